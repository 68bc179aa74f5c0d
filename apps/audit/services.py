"""Writing to the audit trail and verifying its hash chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .models import AuditChainHead, AuditEvent

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
