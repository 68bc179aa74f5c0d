"""The append-only, hash-chained audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import PublicModel


class AuditEvent(PublicModel):
    """One action or decision. Each event's ``digest`` covers its own content and the
    previous event's digest in the same workspace, so an edit, deletion or insertion
    anywhere breaks the chain from that point on (``manage.py audit verify``).

    Rows are only ever inserted, by ``apps.audit.services.audit_record``, which takes a
    lock on the workspace's chain head so two writers cannot fork the chain.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.PROTECT, related_name="+")
    # Not auto_now_add (which overwrites the value on insert): the digest covers the exact
    # timestamp that audit_record sets before hashing.
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    sequence = models.BigIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)  # survives user deletion
    action = models.CharField(max_length=80, db_index=True)  # e.g. flow.published
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    summary = models.CharField(max_length=300, blank=True)
    # For decisions: inputs (redacted), model/policy versions, result, reasons, reviewer.
    data = models.JSONField(default=dict)
    previous_digest = models.CharField(max_length=64)
    digest = models.CharField(max_length=64)

    class Meta:
        ordering = ["-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sequence"], name="audit_sequence_unique")
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action}"


class AuditChainHead(models.Model):
    """The latest sequence and digest per workspace; its row lock serialises writers."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, primary_key=True
    )
    sequence = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit chain of {self.workspace_id} at #{self.sequence}"


DEFAULT_RETENTION_DAYS = 90


class DataSettings(models.Model):
    """A workspace's data governance (Settings → Data): the field names it classifies as
    PII or sensitive, masked wherever run data, decisions and logs are shown or recorded,
    and how long finished runs' data is kept before the daily purge removes it (audit
    events are always kept)."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    sensitive_fields = models.JSONField(default=list)  # lower-case field names
    retention_days = models.PositiveIntegerField(default=DEFAULT_RETENTION_DAYS)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"data settings of {self.workspace_id}"
