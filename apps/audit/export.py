"""Streaming exports of the audit trail (CSV, JSON Lines).

Rows are read with a server-side cursor in chunks and written one by one, so exporting
a huge range never holds it in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet

from .models import AuditEvent
from .redaction import redact

COLUMNS = (
    "sequence",
    "created_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "summary",
    "data",
    "previous_digest",
    "digest",
)
CHUNK = 2000


def _record(event: AuditEvent, sensitive: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        "sequence": event.sequence,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "summary": event.summary,
        # Masked again on the way out, for fields classified after the event was recorded.
        "data": redact(event.data, extra_keys=sensitive),
        "previous_digest": event.previous_digest,
        "digest": event.digest,
    }


def jsonl_lines(
    events: QuerySet[AuditEvent], sensitive: frozenset[str] = frozenset()
) -> Iterator[str]:
    for event in events.iterator(chunk_size=CHUNK):
        yield json.dumps(_record(event, sensitive), cls=DjangoJSONEncoder, sort_keys=True) + "\n"


class _Echo:
    """A file-like object whose write returns the text, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def csv_lines(
    events: QuerySet[AuditEvent], sensitive: frozenset[str] = frozenset()
) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for event in events.iterator(chunk_size=CHUNK):
        record = _record(event, sensitive)
        record["data"] = json.dumps(record["data"], cls=DjangoJSONEncoder, sort_keys=True)
        yield writer.writerow([_defuse(record[column]) for column in COLUMNS])


def _defuse(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to spreadsheet software (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
