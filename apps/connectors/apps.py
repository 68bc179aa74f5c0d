from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from apps.blocks.registry import register_block

        from .http.block import HttpBlock

        register_block(HttpBlock)
