"""Writing to the audit trail and verifying its hash chain."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core import batch_rows

from .models import AuditChainHead, AuditEvent, DataSettings
from .redaction import forget_sensitive_keys
from .sealing import GENESIS, audit_seal, canonical, event_digest


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
    """Append an event to the workspace's trail; the sealer chains it within a second.

    Call inside the transaction that makes the change being recorded, so the change and
    its record commit or roll back together. It takes no lock: inside the engine's step
    batch the row is written with the batch's other rows (``apps.core.batch_rows``).
    ``data`` must already be redacted of secrets and sensitive fields. ``actor`` is a
    user (or None for the system).
    """
    event = batch_rows.new_row(
        AuditEvent,
        workspace_id=workspace_id,
        actor=actor,
        actor_label=actor_label or (str(actor) if actor else "system"),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=summary[:300],
        data=json.loads(canonical(data or {})),
        created_at=timezone.now(),
    )
    return batch_rows.insert(event)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_sequence: int | None = None
    problem: str = ""
    unsealed: int = 0  # events appended but not chained yet (not covered by ``ok``)


def audit_verify(*, workspace_id: Any, seal: bool = True) -> ChainReport:
    """Walk the sealed chain in order; name the first event that was edited, removed,
    inserted or moved. ``seal`` chains what is waiting first, so the report covers every
    committed event; the events still unsealed after that are counted, not checked."""
    if seal:
        audit_seal()
    report = _walk_chain(workspace_id)
    unsealed = AuditEvent.objects.filter(workspace_id=workspace_id, sequence__isnull=True)
    return replace(report, unsealed=unsealed.count())


def _walk_chain(workspace_id: Any) -> ChainReport:
    previous, expected_sequence, checked = GENESIS, 1, 0
    events = AuditEvent.objects.filter(workspace_id=workspace_id, sequence__isnull=False)
    for event in events.order_by("sequence").iterator(chunk_size=2000):
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
