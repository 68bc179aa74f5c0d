"""Sealing: chaining appended audit events into each workspace's hash chain.

Writers append events without a lock (``audit_record``); the order of appends comes from
a Postgres sequence. The sealer takes the committed events not chained yet, in append
order, and gives each its chain position (``sequence``), the previous event's digest and
its own digest, then moves the workspace's head. One sealer runs at a time, held apart
by a transaction-level advisory lock, so the chain never forks; sealing twice seals
nothing twice (only rows still unsealed are taken, and the update re-checks it).

It runs every second from Celery beat (``audit.seal``), and on demand before the trail
is verified or read (the pages and the API), so whatever a person reads is sealed.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from .models import AuditChainHead, AuditEvent

GENESIS = "0" * 64
SEAL_BATCH = 1000
# pg_advisory_xact_lock's key: a fixed number of our own, the same in every process.
SEAL_LOCK = zlib.crc32(b"flowgate.audit.seal")


def canonical(payload: dict[str, Any]) -> bytes:
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
    return hashlib.sha256(canonical(payload)).hexdigest()


def audit_seal(*, wait: bool = True) -> int:
    """Chain every committed unsealed event; return how many were sealed. ``wait=False``
    returns 0 at once when another sealer is at work (it seals these events too)."""
    if not AuditEvent.objects.filter(sequence__isnull=True).exists():
        return 0  # the usual case when a page asks: one look at a small partial index
    total = 0
    while True:
        sealed = _seal_batch(wait=wait)
        total += sealed
        if sealed < SEAL_BATCH:
            return total


# The table name is our own constant; every value is a bound parameter. ``sequence IS
# NULL`` makes a row that was sealed meanwhile (impossible under the lock) stay as it is.
SEAL_SQL = f"""
    UPDATE {AuditEvent._meta.db_table} AS event
       SET sequence = sealed.sequence, previous_digest = sealed.previous,
           digest = sealed.digest
      FROM (VALUES {{rows}}) AS sealed(id, sequence, previous, digest)
     WHERE event.id = sealed.id AND event.sequence IS NULL
"""  # noqa: S608
SEAL_ROW = "(%s::uuid, %s::bigint, %s, %s)"


def _seal_batch(*, wait: bool) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        events = list(
            AuditEvent.objects.filter(sequence__isnull=True).order_by("appended")[:SEAL_BATCH]
        )
        if not events:
            return 0
        heads = _heads({event.workspace_id for event in events})
        params: list[Any] = []
        for event in events:
            head = heads[event.workspace_id]
            event.sequence, event.previous_digest = head.sequence + 1, head.digest
            event.digest = event_digest(event)
            head.sequence, head.digest = event.sequence, event.digest
            params += [event.pk, event.sequence, event.previous_digest, event.digest]
        cursor.execute(SEAL_SQL.format(rows=", ".join([SEAL_ROW] * len(events))), params)
        AuditChainHead.objects.bulk_create(
            heads.values(),
            update_conflicts=True,
            unique_fields=["workspace"],
            update_fields=["sequence", "digest"],
        )
    return len(events)


def _heads(workspace_ids: set[Any]) -> dict[Any, AuditChainHead]:
    heads = {
        head.workspace_id: head
        for head in AuditChainHead.objects.filter(workspace_id__in=workspace_ids)
    }
    for workspace_id in workspace_ids - heads.keys():
        heads[workspace_id] = AuditChainHead(workspace_id=workspace_id, sequence=0, digest=GENESIS)
    return heads
