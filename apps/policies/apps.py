from typing import Any

from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "apps.policies"
    label = "policies"
    verbose_name = "Policies"

    def ready(self) -> None:
        from . import blocks

        blocks.register()

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        """Install the shipped gate and demo policies in the demo workspace (idempotent)."""
        from .services import policy_defaults_ensure

        policy_defaults_ensure(workspace=workspace, actor=users.get("admin"))
