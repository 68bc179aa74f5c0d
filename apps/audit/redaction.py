"""Redaction of secrets and sensitive fields before data is stored in logs, runs or audit.

Keys that look like credentials are always masked; a workspace may classify more field
names as PII (the governance settings extend ``sensitive_keys_for_workspace``).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "••••••"
SECRET_KEY_PATTERN = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|credential|private[_-]?key|cookie)",
    re.IGNORECASE,
)


def redact(value: Any, *, extra_keys: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with every credential-like key, and every key in
    ``extra_keys`` (lower-case), replaced by a mask."""
    if isinstance(value, dict):
        return {
            key: MASK
            if _is_sensitive(str(key), extra_keys)
            else redact(item, extra_keys=extra_keys)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, extra_keys=extra_keys) for item in value]
    return value


def _is_sensitive(key: str, extra_keys: frozenset[str]) -> bool:
    return bool(SECRET_KEY_PATTERN.search(key)) or key.lower() in extra_keys


def sensitive_keys_for_workspace(workspace_id: Any) -> frozenset[str]:
    """Field names a workspace classified as sensitive (none until it classifies any)."""
    return frozenset()


def redact_for_workspace(workspace_id: Any, value: Any) -> Any:
    return redact(value, extra_keys=sensitive_keys_for_workspace(workspace_id))
