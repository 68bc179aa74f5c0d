from typing import Any

from django.apps import AppConfig

DEMO_SENSITIVE_FIELDS = ["date_of_birth", "email", "employee", "phone"]


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from apps.blocks.registry import register_service

        from .redaction import WorkspaceRedaction

        register_service("redaction", WorkspaceRedaction)

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        """Classify a few personal fields in the demo workspace (once; an admin's later
        edits are kept)."""
        from .models import DataSettings
        from .services import data_settings_save

        if not DataSettings.objects.filter(workspace=workspace).exists():
            data_settings_save(
                workspace=workspace,
                actor=users.get("admin"),
                sensitive_fields=DEMO_SENSITIVE_FIELDS,
                retention_days=90,
            )
