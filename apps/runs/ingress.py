"""Async webhooks at speed: group commit of the runs they start.

``POST /hooks/<token>`` for a flow whose webhook is async and authenticated by its URL
token takes this path (studio/handlers.py sends it here before Django's middleware and
view): the request waits on the event loop, not in a thread, while this process's
batcher thread takes every delivery waiting and, for all of them at once,

- counts their rate limits and reads the generation of the subscriptions' cache (one
  Redis round trip),
- reads their subscriptions (the process's cache, ``apps.flows.subscriptions``; one query
  for those it lacks),
- saves their runs (one INSERT, one transaction, one commit: group commit),
- asks for one drain (after the commit).

Each caller is answered after the commit that saved its run (202, as the view answers),
so a 202 still means a committed run. A repeated idempotency key is answered with the
first run, as ``run_start`` does. Anything else (a sync or signed webhook, an unknown
token, a body or header the run cannot take) goes on to Django's view, which answers it
as before; so does every delivery of a batch that failed before its commit (nothing of
it was saved), and a delivery whose idempotency key an earlier run holds. A database outage is a JSON 503 with Retry-After (studio/outage.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import threading
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connection, transaction

from apps.core.bursts import take_burst
from apps.core.generation_cache import generation_keys, snapshot
from apps.core.ratelimit import hits_and_read
from apps.flows.models import TriggerSubscription
from apps.flows.subscriptions import subscription_last_read, subscriptions_for

from .models import Run, Trigger
from .services import run_new, runs_insert
from .triggers import (
    WebhookOutcome,
    WebhookRejected,
    delivery_event_id,
    webhook_delivery,
    webhook_outcome,
)

logger = logging.getLogger(__name__)

# Runs saved by one commit at most: a backlog is taken in several commits, each answering
# its callers as soon as it is done.
MAX_BATCH = 256


@dataclass(frozen=True)
class Throttled:
    retry_after: int


@dataclass(frozen=True)
class Unavailable:
    """The database could not be reached: nothing of the batch was saved."""


# What a delivery gets: an answer, or None when Django's view is to answer it.
Verdict = WebhookOutcome | Throttled | Unavailable | None


@dataclass(eq=False)
class Delivery:
    """One request to ``/hooks/<token>``; ``headers`` with lower-case names."""

    token: str
    body: bytes
    content_type: str
    headers: dict[str, str]
    query: dict[str, str]
    # Set when the caller awaits on an event loop (``Batcher.verdict``): the answer goes
    # there, with the others of its batch.
    waiter: asyncio.Future[Verdict] | None = None
    # Its rate limit was counted here: left to the view, it is not counted again.
    counted: bool = False
    _answer: Future[Verdict] | None = field(default=None, repr=False)

    @property
    def answer(self) -> Future[Verdict]:
        """The verdict, for a caller on a thread (``Batcher.submit``); made on first use,
        so a caller on the loop costs no future and lock it never reads."""
        if self._answer is None:
            self._answer = Future()
        return self._answer


def takes_fast_path(subscription: TriggerSubscription | None) -> bool:
    """Async webhooks authenticated by their URL token; signed and sync ones take the view."""
    if subscription is None:
        return False
    settings = subscription.settings
    return settings.get("mode", "async") != "sync" and settings.get("auth", "token") != "hmac"


def left_to_view(token: str) -> bool:
    """Whether the view answers a delivery to ``token``, judged by the subscription this
    process last read there (a sync or signed webhook's delivery then goes to the view
    without a stop at the batcher). Stale, it costs a detour, never a wrong answer: the
    view answers any delivery, and the batcher reads the current subscription."""
    last_read = subscription_last_read("webhook", token)
    return last_read is not None and not takes_fast_path(last_read)


def accept(deliveries: list[Delivery]) -> list[Verdict]:
    """Start a run for each delivery that takes the fast path, all in one transaction.
    Raises what the database raises; then nothing was saved."""
    # One Redis round trip counts every delivery (those left to the view are not counted
    # again there) and reads the generation of the subscriptions' cache.
    throttles, generations = hits_and_read(
        scope="webhook",
        keys=[hashlib.sha256(delivery.token.encode()).hexdigest() for delivery in deliveries],
        onces=[delivery_event_id(delivery.headers) for delivery in deliveries],
        names=generation_keys(),
    )
    for delivery in deliveries:
        delivery.counted = True
    with snapshot(generations):
        subscriptions = subscriptions_for("webhook", {delivery.token for delivery in deliveries})
    verdicts: list[Verdict] = [None] * len(deliveries)
    runs: dict[int, Run] = {}
    for index, delivery in enumerate(deliveries):
        if (retry_after := throttles[index]) is not None:
            verdicts[index] = Throttled(retry_after)  # as the view would answer it
            continue
        subscription = subscriptions.get(delivery.token)
        if subscription is None or not takes_fast_path(subscription):
            continue  # the view answers it
        try:
            parsed = webhook_delivery(
                body=delivery.body,
                content_type=delivery.content_type,
                headers=delivery.headers,
                query=delivery.query,
            )
        except WebhookRejected:
            continue  # the view answers it (400)
        run = run_new(
            flow=subscription.flow,
            version=subscription.version,
            trigger=Trigger.WEBHOOK,
            payload=parsed.payload,
            idempotency_key=parsed.event_id,
            correlation_id=parsed.correlation_id,
        )
        run.workspace = subscription.flow.workspace  # for the run's URL, without a query
        runs[index] = run
    if not runs:  # nothing to write (the view takes the others)
        return verdicts
    saved = _insert_committed(list(runs.values()))
    for index, run in runs.items():
        if run.pk in saved:
            verdicts[index] = webhook_outcome(run, True)
        # else its idempotency key was taken: the view answers with the first run
    return verdicts


def _insert_committed(runs: list[Run]) -> set[Any]:
    """``runs_insert`` in a transaction of its own. Raises only when nothing was committed:
    a failure after the commit (in a drain request or an event) is logged, and the runs
    saved are saved (taken again by the view, they would start twice)."""
    committed: list[bool] = []
    saved: set[Any] = set()
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))  # runs first
            saved = runs_insert(runs)
    except Exception:
        if not committed:
            raise
        logger.exception("after saving %d webhook runs", len(saved))
    return saved


class Batcher:
    """The process's batcher thread (started on first use, so after a fork)."""

    def __init__(self) -> None:
        self.waiting: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._pid = 0
        self._lock = threading.Lock()

    def submit(self, delivery: Delivery) -> Future[Verdict]:
        """Queue ``delivery``; its verdict comes in ``delivery.answer``."""
        self._put(delivery)
        return delivery.answer

    async def verdict(self, delivery: Delivery) -> Verdict:
        """Queue ``delivery`` and await its verdict on the running event loop. The callers
        of a batch waiting on one loop are woken together, by one call from the batcher's
        thread (``asyncio.wrap_future`` of each answer cost one such call, and a wake-up of
        the loop, per delivery: a tenth of the web process's CPU at 300 webhooks/s)."""
        delivery.waiter = asyncio.get_running_loop().create_future()
        self._put(delivery)
        return await delivery.waiter

    def _put(self, delivery: Delivery) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self.waiting = queue.SimpleQueue()
                threading.Thread(target=self._serve, name="flowgate-ingress", daemon=True).start()
                self._pid = os.getpid()
        self.waiting.put(delivery)

    def _serve(self) -> None:
        waiting = self.waiting
        while True:
            batch = take_burst(waiting, MAX_BATCH)
            try:
                self._settle(batch)
                if waiting.empty():  # idle: the connection goes back (to the pool), not kept
                    connection.close()
            except Exception:  # the thread serves every later request: it must not end
                logger.exception("webhook batcher")

    @staticmethod
    def _settle(batch: list[Delivery]) -> None:
        from studio.outage import UNREACHABLE

        try:
            verdicts = accept(batch)
        except UNREACHABLE as error:
            logger.warning("database unavailable for %d webhook deliveries: %s", len(batch), error)
            verdicts = [Unavailable()] * len(batch)
        except Exception:  # rolled back: the view takes each delivery again, from scratch
            logger.exception("webhook batch failed; the view takes its deliveries")
            verdicts = [None] * len(batch)
        finally:
            # As at the end of a request: back to the pool, or closed when broken or old.
            close_old_connections()
        on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Verdict], Verdict]]]
        on_loops = {}
        for delivery, verdict in zip(batch, verdicts, strict=True):
            if (waiter := delivery.waiter) is not None:
                on_loops.setdefault(waiter.get_loop(), []).append((waiter, verdict))
                continue
            with contextlib.suppress(InvalidStateError):  # its caller gave up (cancelled)
                delivery.answer.set_result(verdict)
        for loop, answers in on_loops.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_answer, answers)


def _answer(answers: list[tuple[asyncio.Future[Verdict], Verdict]]) -> None:
    """On the callers' loop: each waiter gets its verdict, unless its caller gave up."""
    for waiter, verdict in answers:
        if not waiter.done():
            waiter.set_result(verdict)


batcher = Batcher()
