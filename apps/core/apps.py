from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.conf import settings

        from . import schema  # noqa: F401  (registers the API-token scheme with the docs)
        from .tracing import configure_tracing

        configure_tracing(settings.FLOWGATE.get("TRACING_EXPORTER", "none"))
