"""Writing to the audit trail and verifying its hash chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .models import AuditChainHead, AuditEvent, DataSettings
from .redaction import forget_sensitive_keys

GENESIS = "0" * 64


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder
    ).encode()


def event_digest(event: AuditEvent) -> str:
    payload = {
        "workspace": str(event.workspace_id),
        "sequence": event.sequence,
        "created_at": event.created_at.isoformat(),
        "actor": str(event.actor_id or ""),
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "summary": event.summary,
        "data": event.data,
        "previous": event.previous_digest,
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


def audit_record(
    *,
    workspace_id: Any,
    action: str,
    actor: Any = None,
    actor_label: str = "",
    object_type: str = "",
    object_id: Any = "",
    summary: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the workspace's chain.

    Call inside the transaction that makes the change being recorded, so the change and
    its record commit or roll back together. ``data`` must already be redacted of
    secrets and sensitive fields. ``actor`` is a user (or None for the system).
    """
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            workspace_id=workspace_id
        )
        event = AuditEvent(
            workspace_id=workspace_id,
            sequence=head.sequence + 1,
            actor=actor,
            actor_label=actor_label or (str(actor) if actor else "system"),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            summary=summary[:300],
            data=json.loads(_canonical(data or {})),
            previous_digest=head.digest,
            created_at=timezone.now(),
        )
        event.digest = event_digest(event)
        event.save(force_insert=True)
        head.sequence, head.digest = event.sequence, event.digest
        head.save(update_fields=["sequence", "digest"])
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_sequence: int | None = None
    problem: str = ""


def audit_verify(*, workspace_id: Any) -> ChainReport:
    """Walk the chain in order; name the first event that was edited, removed or inserted."""
    previous, expected_sequence, checked = GENESIS, 1, 0
    events = AuditEvent.objects.filter(workspace_id=workspace_id).order_by("sequence")
    for event in events.iterator(chunk_size=2000):
        if event.sequence != expected_sequence:
            return ChainReport(False, checked, expected_sequence, "an event is missing")
        if event.previous_digest != previous:
            return ChainReport(
                False, checked, event.sequence, "the link to the previous event is broken"
            )
        if event_digest(event) != event.digest:
            return ChainReport(False, checked, event.sequence, "the event was altered")
        previous, expected_sequence, checked = event.digest, expected_sequence + 1, checked + 1
    head = AuditChainHead.objects.filter(workspace_id=workspace_id).first()
    if head and (head.sequence != checked or head.digest != previous):
        return ChainReport(
            False,
            checked,
            checked + 1 if head.sequence > checked else checked,
            "events at the end of the trail are missing",
        )
    return ChainReport(True, checked)


def data_settings_save(
    *, workspace: Any, actor: Any, sensitive_fields: list[str], retention_days: int
) -> DataSettings:
    """Save the workspace's field classification and retention, audited; the cached
    classification is dropped so redaction uses the new one at once."""
    fields = sorted({name.strip().lower() for name in sensitive_fields if name.strip()})
    with transaction.atomic():
        current, _ = DataSettings.objects.select_for_update().get_or_create(workspace=workspace)
        before = {
            "sensitive_fields": current.sensitive_fields,
            "retention_days": current.retention_days,
        }
        current.sensitive_fields, current.retention_days = fields, retention_days
        current.updated_by = actor
        current.save()
        audit_record(
            workspace_id=workspace.id,
            action="settings.data_changed",
            actor=actor,
            object_type="workspace",
            object_id=workspace.id,
            summary=f"Data settings: {len(fields)} sensitive fields, keep run data {retention_days} days",
            data={
                "before": before,
                "after": {"sensitive_fields": fields, "retention_days": retention_days},
            },
        )
        transaction.on_commit(lambda: forget_sensitive_keys(workspace.id))
    forget_sensitive_keys(workspace.id)
    return current
