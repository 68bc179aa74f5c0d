"""Async webhooks at speed: group commit of the runs they start.

``POST /hooks/<token>`` for a flow whose webhook is async and authenticated by its URL
token takes this path (studio/handlers.py sends it here before Django's middleware and
view): the request waits on the event loop, not in a thread, while this process's
batcher thread takes every delivery waiting and, for all of them at once,

- reads their subscriptions (one query),
- counts their rate limits (one Redis round trip),
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

import contextlib
import hashlib
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connection, transaction

from apps.core.ratelimit import hits
from apps.flows.models import TriggerSubscription
from apps.flows.subscriptions import subscriptions_for

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
    answer: Future[Verdict] = field(default_factory=Future)
    # Its rate limit was counted here: left to the view, it is not counted again.
    counted: bool = False


def takes_fast_path(subscription: TriggerSubscription | None) -> bool:
    """Async webhooks authenticated by their URL token; signed and sync ones take the view."""
    if subscription is None:
        return False
    settings = subscription.settings
    return settings.get("mode", "async") != "sync" and settings.get("auth", "token") != "hmac"


# How long the batcher goes by a subscription it read (the query with its flow, workspace
# and version cost about half of a one-delivery batch). A token revoked or a flow archived
# or republished elsewhere is seen within this time; the view (everything else) reads it
# on every request.
SUBSCRIPTION_FRESH_SECONDS = 1.0
_subscriptions: dict[str, tuple[float, TriggerSubscription]] = {}


def subscriptions_read(tokens: set[str]) -> dict[str, TriggerSubscription]:
    """The webhook subscriptions at ``tokens``, at most ``SUBSCRIPTION_FRESH_SECONDS`` old."""
    now, found = time.monotonic(), {}
    for token in tokens:
        cached = _subscriptions.get(token)
        if cached is not None and now - cached[0] < SUBSCRIPTION_FRESH_SECONDS:
            found[token] = cached[1]
    if missing := tokens - found.keys():
        for token, subscription in subscriptions_for("webhook", missing).items():
            _subscriptions[token] = (now, subscription)
            found[token] = subscription
    return found


def accept(deliveries: list[Delivery]) -> list[Verdict]:
    """Start a run for each delivery that takes the fast path, all in one transaction.
    Raises what the database raises; then nothing was saved."""
    subscriptions = subscriptions_read({delivery.token for delivery in deliveries})
    verdicts: list[Verdict] = [None] * len(deliveries)
    eligible = [
        index
        for index, delivery in enumerate(deliveries)
        if takes_fast_path(subscriptions.get(delivery.token))
    ]
    throttles = hits(
        scope="webhook",
        keys=[hashlib.sha256(deliveries[index].token.encode()).hexdigest() for index in eligible],
        onces=[delivery_event_id(deliveries[index].headers) for index in eligible],
    )
    for index in eligible:
        deliveries[index].counted = True
    runs: dict[int, Run] = {}
    for index, retry_after in zip(eligible, throttles, strict=True):
        if retry_after is not None:
            verdicts[index] = Throttled(retry_after)
            continue
        delivery, subscription = deliveries[index], subscriptions[deliveries[index].token]
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
    if not runs:  # sync or signed deliveries only: the view takes them, nothing to write
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
        with self._lock:
            if self._pid != os.getpid():
                self.waiting = queue.SimpleQueue()
                threading.Thread(target=self._serve, name="flowgate-ingress", daemon=True).start()
                self._pid = os.getpid()
        self.waiting.put(delivery)
        return delivery.answer

    def _serve(self) -> None:
        waiting = self.waiting
        while True:
            batch = [waiting.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(waiting.get_nowait())
                except queue.Empty:
                    break
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
        for delivery, verdict in zip(batch, verdicts, strict=True):
            with contextlib.suppress(InvalidStateError):  # its caller gave up (cancelled)
                delivery.answer.set_result(verdict)


batcher = Batcher()
