"""Publishing live events to the browser through the Channels layer.

Call only after the transaction that caused the event has committed (use
``publish_workspace_event_on_commit`` inside one): a page must never see a state that was
rolled back.

Publishing is fire-and-forget to one background thread per process: an event costs a
queue put on the hot path. Events that queue up together (a run's steps, released by one
commit) go to each group as one ``workspace.events`` message: each group's message is a
Redis ``PUBLISH`` (the layer is pub/sub, see ``studio.env.channel_layer``), and a burst's
``PUBLISH``es go in one pipeline. The thread publishes with a blocking Redis client, as
channels_redis's ``group_send`` would (same channel names, shards and payloads): the
layer's own asyncio client, on a loop of its own, cost more (a sync W1 run's eight events,
in-process, without uvloop: 0.41-0.47 CPU-ms with the loop, 0.28 blocking).
Live events are best effort; Postgres holds the truth and pages re-read it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import weakref
from concurrent.futures import Future
from typing import Any
from uuid import UUID

import redis
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core.bursts import take_burst
from apps.core.redis_clients import SOCKET_TIMEOUTS

logger = logging.getLogger(__name__)

# (channel layer, groups, event, resolved once sent: only for a caller who waits)
_Outgoing = tuple[Any, list[str], dict[str, Any], Future[None] | None]
# Events per coalesced message: keeps one message well under the layer's size limits.
MAX_EVENTS_PER_MESSAGE = 100


def workspace_group(workspace_id: UUID | str) -> str:
    return f"workspace.{workspace_id}"


def run_group(run_id: UUID | str) -> str:
    """One group per run: a run's page follows its steps without the workspace's traffic."""
    return f"run.{run_id}"


class _Publisher:
    """One background thread per process, sending events one after another in the order
    they were published: a page must not see "run succeeded" before that run's last step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Outgoing] | None = None
        self._pid = 0

    def _ensure_thread(self) -> queue.SimpleQueue[_Outgoing]:
        # A forked worker inherits the parent's object but not its thread: start anew.
        if self._queue is None or self._pid != os.getpid():
            with self._lock:
                if self._queue is None or self._pid != os.getpid():
                    outgoing: queue.SimpleQueue[_Outgoing] = queue.SimpleQueue()
                    threading.Thread(
                        target=_drain, args=(outgoing,), name="event-publisher", daemon=True
                    ).start()
                    self._queue, self._pid = outgoing, os.getpid()
        return self._queue

    def send(
        self, groups: list[str], event: dict[str, Any], *, wait: bool = False
    ) -> Future[None] | None:
        """Queue ``event`` for ``groups``; with ``wait``, a future resolved once it is sent
        (made only then: a future per event, for the many nobody waits on, cost more CPU
        than sending them)."""
        layer = get_channel_layer()
        if layer is None:
            return None
        sent: Future[None] | None = Future() if wait else None
        self._ensure_thread().put((layer, groups, event, sent))
        return sent


def _drain(outgoing: queue.SimpleQueue[_Outgoing]) -> None:
    """The publisher's thread: each burst of events waiting together, sent as one."""
    while True:
        burst = take_burst(outgoing, MAX_EVENTS_PER_MESSAGE)
        for layer, messages in _by_layer(burst).items():
            try:
                _send(layer, messages)
            except Exception:  # the thread serves every later event: it must not end
                logger.exception("live events: a burst could not be sent")
        for *_, sent in burst:
            if sent is not None:
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


def _send(layer: Any, messages: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """A burst's messages to one layer. On the pub/sub layer every group's ``PUBLISH``
    goes in one pipeline per Redis shard: one round trip for the burst (a drain's round
    releases a message for each of its runs and one for the workspace; each
    ``group_send`` cost its own trip and a fair part of a worker's CPU per run).
    Another layer (or shards this module has no blocking client for) gets one
    ``group_send`` per group, on the thread's own event loop."""
    shards = _pubsub_shards(layer, messages)
    if shards is None:
        for group, events in messages:
            try:
                _loop().run_until_complete(layer.group_send(group, _message(events)))
            except Exception as error:
                _outage.failed(len(events), error)
            else:
                _outage.sent()
        return
    for client, published in shards.items():
        count = sum(events for _, _, events in published)
        try:
            pipeline = client.pipeline(transaction=False)
            for channel, payload, _ in published:
                pipeline.publish(channel, payload)
            pipeline.execute()
        except Exception as error:
            client.connection_pool.disconnect()  # the next burst connects afresh
            _outage.failed(count, error)
        else:
            _outage.sent()


class _PubSubShards:
    """How channels_redis's pub/sub layer names a group's channel and picks its shard (its
    per-loop layer, made without a loop: it opens no connection), and a blocking client
    for each shard's Redis; ``clients`` None where a shard is given as anything but a
    Redis URL (``studio.env.channel_layer`` gives URLs)."""

    def __init__(self, layer: Any) -> None:
        from channels_redis.pubsub import RedisPubSubLoopLayer

        self.inner = RedisPubSubLoopLayer(*layer._args, **layer._kwargs, channel_layer=layer)
        hosts = [shard.host for shard in self.inner._shards]
        self.clients = None
        if all(set(host) == {"address"} for host in hosts):
            # As channels_redis makes its pool (``create_pool``), blocking; this thread's own.
            self.clients = [
                redis.Redis(
                    connection_pool=redis.ConnectionPool.from_url(
                        host["address"], **SOCKET_TIMEOUTS
                    )
                )
                for host in hosts
            ]

    def client_for(self, channel: str) -> Any:
        assert self.clients is not None
        return self.clients[self.inner._shards.index(self.inner._get_shard(channel))]


# Per layer (tests swap layers), used by the publisher's thread only.
_shards: weakref.WeakKeyDictionary[Any, _PubSubShards] = weakref.WeakKeyDictionary()
_thread_loop: list[asyncio.AbstractEventLoop] = []


def _loop() -> asyncio.AbstractEventLoop:
    if not _thread_loop:
        _thread_loop.append(asyncio.new_event_loop())
    return _thread_loop[0]


def _pubsub_shards(
    layer: Any, messages: list[tuple[str, list[dict[str, Any]]]]
) -> dict[Any, list[tuple[str, bytes, int]]] | None:
    """(channel, payload, events) per shard's blocking client of channels_redis's pub/sub
    layer, as its ``group_send`` would publish them; None for any other layer, or shards
    given as anything but a Redis URL (sentinels)."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    known = _shards.get(layer)
    if known is None:
        known = _shards[layer] = _PubSubShards(layer)
    if known.clients is None:
        return None
    shards: dict[Any, list[tuple[str, bytes, int]]] = {}
    for group, events in messages:
        channel = known.inner._get_group_channel_name(group)
        payload = layer.serialize(_message(events))
        shards.setdefault(known.client_for(channel), []).append((channel, payload, len(events)))
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
    sent = _publisher.send(groups, event, wait=wait)
    if sent is not None:
        sent.result(timeout=5)


def publish_workspace_event_on_commit(workspace_id: UUID | str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish_workspace_event(workspace_id, event))
