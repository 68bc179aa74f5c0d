"""Presentation helpers for run data: pretty JSON and durations."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre>; autoescaping still applies to the result."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)


@register.filter
def compact_json(value: Any) -> str:
    """One-line JSON for a table cell (``true``, ``null``, double quotes: what users type)."""
    return json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)


@register.filter
def duration(milliseconds: float | None) -> str:
    if milliseconds is None:
        return "—"
    if milliseconds < 1:
        return f"{milliseconds * 1000:.0f} µs"
    if milliseconds < 1000:
        return f"{milliseconds:.1f} ms"
    seconds = milliseconds / 1000
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


@register.filter
def short_id(value: Any) -> str:
    return str(value)[:8]


@register.filter
def percent(fraction: float | None) -> str:
    if fraction is None:
        return "—"
    value = fraction * 100
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


@register.filter
def age(seconds: float | None) -> str:
    """A short age: 45 s, 12 min, 3 h, 2 d."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


@register.filter
def redacted(value: Any, workspace_id: Any) -> Any:
    """``value`` with credentials and the workspace's classified (PII) fields masked."""
    from apps.audit.redaction import redact_for_workspace

    return redact_for_workspace(workspace_id, value)
