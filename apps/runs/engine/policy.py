"""Per-step execution policy: timeouts, retries, exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from apps.flows.node_settings import NodeSettings

__all__ = ["NodeSettings", "StepTimeout", "backoff_seconds", "engine_setting"]


class StepTimeout(Exception):
    """The step ran past its timeout. Transient: it is retried if attempts remain."""

    retryable = True

    def __init__(self, seconds: float):
        super().__init__(f"the step did not finish within {seconds:g} s")
        self.message = str(self)


def backoff_seconds(retry_number: int, settings: NodeSettings) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so retries of many
    runs that failed together do not hit the far end together again."""
    ceiling: float = min(
        settings.max_backoff_seconds, settings.backoff_seconds * 2 ** max(retry_number - 1, 0)
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 — jitter, not security


def engine_setting(name: str) -> Any:
    """One of the engine's ``FLOWGATE`` settings (read each time: tests change them)."""
    flowgate: Mapping[str, Any] = settings.FLOWGATE
    return flowgate[name]
