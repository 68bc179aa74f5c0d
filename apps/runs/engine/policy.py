"""Per-step execution policy: timeouts, retries, exponential backoff with jitter."""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from apps.flows.node_settings import NodeSettings

T = TypeVar("T")
__all__ = ["NodeSettings", "StepTimeout", "backoff_seconds", "call_with_timeout"]


class StepTimeout(Exception):
    """The step ran past its timeout. Transient: it is retried if attempts remain."""

    retryable = True

    def __init__(self, seconds: float):
        super().__init__(f"the step did not finish within {seconds:g} s")
        self.message = str(self)


def backoff_seconds(retry_number: int, settings: NodeSettings) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so retries of many
    runs that failed together do not hit the far end together again."""
    ceiling = min(
        settings.max_backoff_seconds, settings.backoff_seconds * 2 ** max(retry_number - 1, 0)
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 — jitter, not security


def call_with_timeout(function: Callable[[], T], seconds: float) -> T:
    """Run ``function``; raise StepTimeout after ``seconds``. In a worker's main thread a
    real-time timer interrupts it; elsewhere (the web process) the blocks' own I/O
    timeouts bound it and an overrun is reported afterwards."""
    if threading.current_thread() is not threading.main_thread():
        return function()

    def on_timeout(signum: int, frame: Any) -> None:
        raise StepTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, on_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return function()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
