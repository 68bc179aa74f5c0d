"""How the engine asks for work elsewhere, without importing the layers above it.

The engine requests a drain (runs were queued), a delayed advance of one run (a retry's
short backoff) and the resumption of a waiting step (a sub-flow's parent). ``RunsConfig``
installs the Celery implementation (``apps/runs/tasks.py``) when the app is ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Dispatcher(Protocol):
    def request_drain(self, *, even_if_pending: bool = False) -> None:
        """After commit, make sure a drain will look at the queue (``even_if_pending``:
        send a request even when one seems pending, as it may have been lost)."""

    def enqueue_advance(
        self, run_id: Any, trace_context: Mapping[str, str] | None, *, countdown: float | None
    ) -> None:
        """After commit (and ``countdown`` seconds), advance the run."""

    def resume_step(self, *, run_id: Any, node_id: str, signal: dict[str, Any]) -> None:
        """End the wait of a run's step with ``signal`` (a child's end, a deadline)."""


_installed: Dispatcher | None = None


def install(implementation: Dispatcher) -> None:
    global _installed
    _installed = implementation


def dispatcher() -> Dispatcher:
    if _installed is None:
        raise RuntimeError("no dispatcher is installed (RunsConfig.ready installs Celery's)")
    return _installed
