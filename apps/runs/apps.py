from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from apps.blocks.registry import register_block, register_service

        from .blocks import TRIGGER_BLOCKS
        from .engine.dispatch import install
        from .subflows import SubflowService
        from .tasks import CeleryDispatcher

        for block in TRIGGER_BLOCKS:
            register_block(block)
        register_service("subflows", SubflowService)
        install(CeleryDispatcher())
