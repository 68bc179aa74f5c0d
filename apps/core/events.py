"""Publishing live events to the browser through the Channels layer.

Call only after the transaction that caused the event has committed (use
``publish_workspace_event_on_commit`` inside one): a page must never see a state that was
rolled back.

Publishing is fire-and-forget on one background event loop per process: the channel
layer keeps its Redis connections on that loop, so an event costs a queue put on the hot
path instead of a new loop and connection (``async_to_sync`` per call cost ~10 ms). Live
events are best effort; Postgres holds the truth and pages re-read it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any
from uuid import UUID

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def workspace_group(workspace_id: UUID | str) -> str:
    return f"workspace.{workspace_id}"


def run_group(run_id: UUID | str) -> str:
    """One group per run: a run's page follows its steps without the workspace's traffic."""
    return f"run.{run_id}"


class _Publisher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        # A forked worker inherits the parent's object but not its thread: start anew.
        if self._loop is None or self._pid != os.getpid():
            with self._lock:
                if self._loop is None or self._pid != os.getpid():
                    loop = asyncio.new_event_loop()
                    threading.Thread(
                        target=loop.run_forever, name="event-publisher", daemon=True
                    ).start()
                    self._loop, self._pid = loop, os.getpid()
        return self._loop

    def send(self, group: str, message: dict[str, Any]) -> asyncio.Future[Any] | None:
        layer = get_channel_layer()
        if layer is None:
            return None
        future = asyncio.run_coroutine_threadsafe(
            self._send(layer, group, message), self._ensure_loop()
        )
        return future

    @staticmethod
    async def _send(layer: Any, group: str, message: dict[str, Any]) -> None:
        try:
            await layer.group_send(group, message)
        except Exception:
            logger.warning(
                "could not publish %s event", message.get("event", {}).get("type"), exc_info=True
            )


_publisher = _Publisher()


def publish_workspace_event(
    workspace_id: UUID | str, event: dict[str, Any], *, wait: bool = False
) -> None:
    """Send ``event`` to every open page of the workspace. ``wait`` blocks until sent
    (tests, management commands about to exit)."""
    _publish([workspace_group(workspace_id)], event, wait=wait)


def publish_run_event(
    workspace_id: UUID | str, run_id: UUID | str, event: dict[str, Any], *, wait: bool = False
) -> None:
    """Send a run's ``event`` to the workspace's pages and to the pages following that run."""
    _publish([workspace_group(workspace_id), run_group(run_id)], event, wait=wait)


def _publish(groups: list[str], event: dict[str, Any], *, wait: bool) -> None:
    futures = [
        _publisher.send(group, {"type": "workspace.event", "event": event}) for group in groups
    ]
    if wait:
        for future in futures:
            if future is not None:
                future.result(timeout=5)


def publish_workspace_event_on_commit(workspace_id: UUID | str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish_workspace_event(workspace_id, event))
