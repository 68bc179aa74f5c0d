from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "apps.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from django.conf import settings

        from .tracing import configure_tracing

        configure_tracing(settings.FLOWGATE.get("TRACING_EXPORTER", "none"))
