"""Publishing live events to the browser through the Channels layer.

Call only after the transaction that caused the event has committed (use
``publish_workspace_event_on_commit`` inside one): a page must never see a state that was
rolled back.

Publishing is fire-and-forget on one background event loop per process: the channel
layer keeps its Redis connections on that loop, so an event costs a queue put on the hot
path instead of a new loop and connection (``async_to_sync`` per call cost ~10 ms). Events
that queue up together (a run's steps, released by one commit) go to each group as one
``workspace.events`` message: each ``group_send`` is a Redis ``PUBLISH`` (the layer is
pub/sub, see ``studio.env.channel_layer``) and the engine publishes one event per step.
Live events are best effort; Postgres holds the truth and pages re-read it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
from concurrent.futures import Future
from typing import Any
from uuid import UUID

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# (channel layer, groups, event, resolved once sent)
_Outgoing = tuple[Any, list[str], dict[str, Any], Future[None]]
# Events per coalesced message: keeps one message well under the layer's size limits.
MAX_EVENTS_PER_MESSAGE = 100


def workspace_group(workspace_id: UUID | str) -> str:
    return f"workspace.{workspace_id}"


def run_group(run_id: UUID | str) -> str:
    """One group per run: a run's page follows its steps without the workspace's traffic."""
    return f"run.{run_id}"


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (uvicorn[standard] brings it; the web server runs on it): the
    publisher's thread spends most of its CPU in the loop's own machinery (a sync W1 run's
    two PUBLISHes cost about 1.2 ms of CPU on asyncio's pure-Python loop, 0.9 on uvloop)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Publisher:
    """One background loop per process, sending events one after another in the order they
    were published: a page must not see "run succeeded" before that run's last step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Outgoing] | None = None
        self._pid = 0
        # Events handed over by other threads, moved to the queue on the loop: one wake-up
        # of the loop for all those published meanwhile (a run's steps, released by one
        # commit), not one each.
        self._handed: collections.deque[_Outgoing] = collections.deque()
        self._wake_pending = False

    def _ensure_loop(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[_Outgoing]]:
        # A forked worker inherits the parent's object but not its thread: start anew.
        if self._loop is None or self._pid != os.getpid():
            with self._lock:
                if self._loop is None or self._pid != os.getpid():
                    loop = _new_loop()
                    queue: asyncio.Queue[_Outgoing] = asyncio.Queue()
                    threading.Thread(
                        target=loop.run_forever, name="event-publisher", daemon=True
                    ).start()
                    asyncio.run_coroutine_threadsafe(self._drain(queue), loop)
                    self._loop, self._queue, self._pid = loop, queue, os.getpid()
                    self._handed, self._wake_pending = collections.deque(), False
        assert self._queue is not None
        return self._loop, self._queue

    def send(self, groups: list[str], event: dict[str, Any]) -> Future[None] | None:
        layer = get_channel_layer()
        if layer is None:
            return None
        sent: Future[None] = Future()
        loop, queue = self._ensure_loop()
        self._handed.append((layer, groups, event, sent))
        if not self._wake_pending:  # else the wake-up on its way takes this event too
            self._wake_pending = True
            loop.call_soon_threadsafe(self._take_handed, queue)
        return sent

    def _take_handed(self, queue: asyncio.Queue[_Outgoing]) -> None:
        # Cleared before taking: an event handed over after this line wakes the loop again.
        self._wake_pending = False
        while self._handed:
            queue.put_nowait(self._handed.popleft())

    @staticmethod
    async def _drain(queue: asyncio.Queue[_Outgoing]) -> None:
        while True:
            burst = [await queue.get()]
            while not queue.empty() and len(burst) < MAX_EVENTS_PER_MESSAGE:
                burst.append(queue.get_nowait())
            for layer, messages in _by_layer(burst).items():
                await _send(layer, messages)
            for *_, sent in burst:
                sent.set_result(None)


class _Outage:
    """While the layer's Redis is down every publish fails: one line when that starts and
    one when it ends (with the count dropped), not a traceback per event."""

    def __init__(self) -> None:
        self.dropped = 0

    def failed(self, events: int, error: Exception) -> None:
        if not self.dropped:
            logger.warning(
                "live events are not being published (%s: %s); pages catch up from the "
                "database, and this is logged again once publishing works",
                type(error).__name__,
                error,
            )
        self.dropped += events

    def sent(self) -> None:
        if self.dropped:
            logger.warning("live events are published again (%d dropped)", self.dropped)
            self.dropped = 0


_outage = _Outage()


def _by_group(burst: list[_Outgoing]) -> dict[tuple[Any, str], list[dict[str, Any]]]:
    """Each group's events, in the order they were published."""
    grouped: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for layer, groups, event, _sent in burst:
        for group in groups:
            grouped.setdefault((layer, group), []).append(event)
    return grouped


def _by_layer(burst: list[_Outgoing]) -> dict[Any, list[tuple[str, list[dict[str, Any]]]]]:
    """Each layer's messages: each group's events, in the order they were published."""
    layers: dict[Any, list[tuple[str, list[dict[str, Any]]]]] = {}
    for (layer, group), events in _by_group(burst).items():
        layers.setdefault(layer, []).append((group, events))
    return layers


async def _send(layer: Any, messages: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """A burst's messages to one layer. On the pub/sub layer every group's ``PUBLISH``
    goes in one pipeline per Redis shard: one round trip for the burst (a drain's round
    releases a message for each of its runs and one for the workspace; each
    ``group_send`` cost its own trip and a fair part of a worker's CPU per run).
    Another layer (tests' in-memory one) gets one ``group_send`` per group."""
    shards = _pubsub_shards(layer, messages)
    if shards is None:
        for group, events in messages:
            try:
                await layer.group_send(group, _message(events))
            except Exception as error:
                _outage.failed(len(events), error)
            else:
                _outage.sent()
        return
    for shard, published in shards.items():
        count = sum(events for _, _, events in published)
        try:
            async with shard._lock:  # the layer's own lock around its connection
                shard._ensure_redis()
                pipeline = shard._redis.pipeline(transaction=False)
                for channel, payload, _ in published:
                    pipeline.publish(channel, payload)
                await pipeline.execute()
        except Exception as error:
            _outage.failed(count, error)
        else:
            _outage.sent()


def _pubsub_shards(
    layer: Any, messages: list[tuple[str, list[dict[str, Any]]]]
) -> dict[Any, list[tuple[str, bytes, int]]] | None:
    """(channel, payload, events) per shard of channels_redis's pub/sub layer, as its
    ``group_send`` would publish them; None for any other layer."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    inner = layer._get_layer()  # this event loop's layer, as ``group_send`` uses
    shards: dict[Any, list[tuple[str, bytes, int]]] = {}
    for group, events in messages:
        channel = inner._get_group_channel_name(group)
        payload = layer.serialize(_message(events))
        shards.setdefault(inner._get_shard(channel), []).append((channel, payload, len(events)))
    return shards


def _message(events: list[dict[str, Any]]) -> dict[str, Any]:
    if len(events) == 1:
        return {"type": "workspace.event", "event": events[0]}
    return {"type": "workspace.events", "events": events}


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
    sent = _publisher.send(groups, event)
    if wait and sent is not None:
        sent.result(timeout=5)


def publish_workspace_event_on_commit(workspace_id: UUID | str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish_workspace_event(workspace_id, event))
