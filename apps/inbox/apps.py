from typing import Any

from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "apps.inbox"
    label = "inbox"
    verbose_name = "Inbox"

    def ready(self) -> None:
        from . import blocks

        blocks.register()

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        """A published expense-approval flow with one task waiting for the demo reviewer."""
        from .demo import seed_inbox

        seed_inbox(workspace=workspace, users=users)
