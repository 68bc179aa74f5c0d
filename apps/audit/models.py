"""The append-only, hash-chained audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.models import PublicModel

# The Postgres sequence that orders appends (created by migration 0004).
APPEND_SEQUENCE = "audit_event_appended"


class AuditEvent(PublicModel):
    """One action or decision. Each sealed event's ``digest`` covers its own content and
    the previous sealed event's digest in the same workspace, so an edit, deletion,
    insertion or reordering anywhere breaks the chain from that point on
    (``manage.py audit verify``).

    Writers only insert (``apps.audit.services.audit_record``): the row gets its place in
    the append order (``appended``) from a Postgres sequence and takes no lock. One sealer
    at a time (``apps.audit.sealing``) gives committed rows their chain position
    (``sequence``) and digests, in append order; until then ``sequence`` is empty.
    """

    # Not indexed alone: every query by workspace uses an index that starts with it (below).
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Not auto_now_add (which overwrites the value on insert): the digest covers the exact
    # timestamp that audit_record sets before hashing.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Where the row stands in the order of appends, from the database (no lock).
    appended = models.BigIntegerField(
        db_default=models.Func(
            models.Value(APPEND_SEQUENCE), function="nextval", output_field=models.BigIntegerField()
        ),
        editable=False,
        unique=True,
    )
    # The position in the workspace's hash chain; set by the sealer, empty until then.
    sequence = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)  # survives user deletion
    action = models.CharField(max_length=80)  # e.g. flow.published
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    # For decisions: inputs (redacted), model/policy versions, result, reasons, reviewer.
    data = models.JSONField(default=dict)
    previous_digest = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-appended"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sequence"], name="audit_sequence_unique")
        ]
        # Every decision writes an event and the sealer rewrites it (its chain position is
        # indexed): each index here costs two entries per decision, so only the indexes
        # that queries use (selectors.py) are kept. Filters by time are within a workspace;
        # actions are matched whole or by prefix (one pattern index serves both); object
        # ids only whole.
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["action"], name="audit_action", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["object_id"], name="audit_object_id"),
            # The sealer's work list: small, whatever the size of the trail.
            models.Index(
                fields=["appended"], condition=Q(sequence__isnull=True), name="audit_unsealed"
            ),
        ]

    @property
    def sealed(self) -> bool:
        return self.sequence is not None

    def __str__(self) -> str:
        return f"#{self.sequence or 'unsealed'} {self.action}"


class AuditChainHead(models.Model):
    """The latest sealed sequence and digest per workspace (written by the sealer only):
    what tells a truncated trail from a short one."""

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
