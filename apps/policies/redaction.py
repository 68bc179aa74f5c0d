"""Redacting policy inputs before they are logged: sensitive keys are masked, long strings
cut, and the whole copy bounded, so the decision log never becomes a copy of user data."""

from __future__ import annotations

import re
from typing import Any

SENSITIVE_KEY = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|credential|iban|card|"
    r"ssn|social[_-]?security|email|phone|address|birth",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
MAX_STRING = 200
MAX_ITEMS = 50
MAX_DEPTH = 8


def redact(value: Any, *, depth: int = 0) -> Any:
    """A copy of ``value`` with sensitive fields masked and sizes bounded."""
    if depth >= MAX_DEPTH:
        return "[truncated]"
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ITEMS]
        return {
            str(key): REDACTED if SENSITIVE_KEY.search(str(key)) else redact(item, depth=depth + 1)
            for key, item in items
        }
    if isinstance(value, list | tuple):
        return [redact(item, depth=depth + 1) for item in list(value)[:MAX_ITEMS]]
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + "…"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)[:MAX_STRING]
