"""Redaction of secrets and sensitive fields before data is stored in logs, runs or audit.

Keys that look like credentials are always masked; a workspace may classify more field
names as PII in Settings → Data (``sensitive_keys_for_workspace``).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from django.core.cache import cache

logger = logging.getLogger(__name__)

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


# Field classifications are read on every redaction; they are cached in Redis (shared by
# web and workers, deleted when an admin saves) and, for a moment, in the process itself so
# one page rendering many steps asks once.
CACHE_SECONDS = 300
LOCAL_SECONDS = 2.0
_local: dict[str, tuple[float, frozenset[str]]] = {}


def _cache_key(workspace_id: Any) -> str:
    return f"audit:sensitive-keys:{workspace_id}"


def sensitive_keys_for_workspace(workspace_id: Any) -> frozenset[str]:
    """Field names (lower-case) the workspace classified as PII or sensitive."""
    if workspace_id is None:
        return frozenset()
    key = _cache_key(workspace_id)
    now = time.monotonic()
    hit = _local.get(key)
    if hit and hit[0] > now:
        return hit[1]
    try:
        cached = cache.get(key)
    except Exception:  # Redis down: redaction still works, from Postgres
        logger.warning("field classification cache unavailable", exc_info=True)
        cached = None
    if cached is None:
        from .selectors import data_settings_get

        cached = sorted(data_settings_get(workspace_id=workspace_id).sensitive_fields)
        try:
            cache.set(key, cached, CACHE_SECONDS)
        except Exception:
            logger.warning("field classification cache unavailable", exc_info=True)
    keys = frozenset(str(name).lower() for name in cached)
    _local[key] = (now + LOCAL_SECONDS, keys)
    return keys


def forget_sensitive_keys(workspace_id: Any) -> None:
    """Drop the cached classification (called when it is saved)."""
    key = _cache_key(workspace_id)
    _local.pop(key, None)
    try:
        cache.delete(key)
    except Exception:  # a stale entry then lives CACHE_SECONDS at most
        logger.warning("field classification cache unavailable", exc_info=True)


def redact_for_workspace(workspace_id: Any, value: Any) -> Any:
    return redact(value, extra_keys=sensitive_keys_for_workspace(workspace_id))


class WorkspaceRedaction:
    """What blocks get from ``ctx.service("redaction")``: the workspace's classification
    applied to what a step records (an AI step's prompt, say)."""

    def __init__(self, workspace_id: Any) -> None:
        self.workspace_id = workspace_id

    def is_sensitive(self, key: str) -> bool:
        return _is_sensitive(key, sensitive_keys_for_workspace(self.workspace_id))

    def redact(self, value: Any) -> Any:
        return redact_for_workspace(self.workspace_id, value)
