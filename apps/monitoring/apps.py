from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Model monitoring"

    def ready(self) -> None:
        from apps.blocks.registry import register_service

        from .sampling import PredictionRecorder

        # What ``model.predict`` calls after each answer: ``ctx.service("monitoring")``.
        register_service("monitoring", PredictionRecorder)
