"""Webhooks at speed: group commit of the runs they start.

``POST /hooks/<token>`` for a flow authenticated by its URL token takes this path
(studio/handlers.py sends it here before Django's middleware and view) when the flow's
webhook is async, or sync and run in the web process (``triggers.inline_graph``: no block
that waits, no concurrency limit). The request waits on the event loop, not in a thread,
while this process's batcher thread takes every delivery waiting and, for all of them at
once,

- counts their rate limits and reads the generations of the process's caches (one Redis
  round trip),
- reads their subscriptions (the process's cache, ``apps.flows.subscriptions``; one query
  for those it lacks),
- saves the async ones' runs (one INSERT, one transaction, one commit: group commit) and
  asks for one drain (after the commit),
- advances the sync ones' runs in one session of the engine (``InlineRuns``), as a drain
  advances its batch: their first steps, and their rows, in one transaction; a round more
  for the outcomes of call-outs that ended, while the thread goes on taking deliveries.

Each async caller is answered after the commit that saved its run (202, as the view
answers), so a 202 still means a committed run; each sync caller when its run has ended,
or left its budget to a worker (202), with the flow's response. A repeated idempotency key
is answered with the first run, as ``run_start`` does. Anything else (a signed webhook, a
sync one run by the workers, an unknown token, a body or header the run cannot take) goes
on to Django's view, which answers it as before; so does every delivery of a batch that
failed before its commit (nothing of it was saved), and a delivery whose idempotency key an
earlier run holds. A database outage is a JSON 503 with Retry-After (studio/outage.py).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import os
import queue
import threading
import time
import uuid
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from apps.core.bursts import take_burst, take_queued
from apps.core.generation_cache import generation_keys, snapshot
from apps.core.ratelimit import hits_and_read
from apps.flows.models import TriggerSubscription
from apps.flows.subscriptions import subscription_last_read, subscriptions_for

from . import lifecycle
from .engine import claims
from .engine.executor import RunExecutor
from .engine.session import Session
from .models import Run, Trigger
from .services import run_new, runs_insert
from .triggers import (
    WebhookOutcome,
    WebhookRejected,
    delivery_event_id,
    handed_over_outcome,
    inline_graph,
    inline_outcome,
    sync_budget,
    webhook_delivery,
    webhook_outcome,
)

logger = logging.getLogger(__name__)

# Runs saved by one commit at most: a backlog is taken in several commits, each answering
# its callers as soon as it is done.
MAX_BATCH = 256
# How long the batcher waits for its sync runs' call-outs before it looks at its leases
# again (a delivery arriving meanwhile ends the wait at once).
CALLS_WAIT_SECONDS = 0.5


@dataclass(frozen=True)
class Throttled:
    retry_after: int


@dataclass(frozen=True)
class Unavailable:
    """The database could not be reached: nothing of the batch was saved."""


@dataclass(frozen=True)
class Inline:
    """A sync delivery's new run (not saved yet), for the batcher's session to advance
    within ``budget`` seconds."""

    run: Run
    budget: float


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
    # Its run was advanced here (a sync webhook's): answered with the flow's response.
    ran_inline: bool = False
    _answer: Future[Verdict] | None = field(default=None, repr=False)

    @property
    def answer(self) -> Future[Verdict]:
        """The verdict, for a caller on a thread (``Batcher.submit``); made on first use,
        so a caller on the loop costs no future and lock it never reads."""
        if self._answer is None:
            self._answer = Future()
        return self._answer


ASYNC, INLINE = "async", "inline"
# Whether each published version seen here runs inline: read on the event loop
# (``left_to_view``), where the database is not.
_runs_inline: dict[int, bool] = {}


def fast_path(subscription: TriggerSubscription | None) -> str | None:
    """``ASYNC`` for an async webhook authenticated by its URL token, ``INLINE`` for a sync
    one whose flow the web process runs; None (the view) for the others."""
    if subscription is None or subscription.settings.get("auth", "token") == "hmac":
        return None
    if subscription.settings.get("mode", "async") != "sync":
        return ASYNC
    inline = _runs_inline[subscription.version_id] = inline_graph(subscription) is not None
    return INLINE if inline else None


def left_to_view(token: str) -> bool:
    """Whether the view answers a delivery to ``token``, judged by the subscription this
    process last read there (a signed webhook's delivery, or a sync one the workers run,
    then goes to the view without a stop at the batcher). Stale, it costs a detour, never
    a wrong answer: the view answers any delivery, and the batcher reads the current
    subscription."""
    last_read = subscription_last_read("webhook", token)
    if last_read is None:
        return False
    settings = last_read.settings
    if settings.get("auth", "token") == "hmac":
        return True
    return settings.get("mode", "async") == "sync" and not _runs_inline.get(
        last_read.version_id, True
    )


def accept(
    deliveries: list[Delivery],
) -> tuple[list[Verdict | Inline], list[bytes | None] | None]:
    """Start a run for each delivery that takes the fast path: the async ones' all saved in
    one transaction; the sync ones' (``Inline``) for the caller to advance, under the
    generations of the process's caches read here (returned with the verdicts). Raises
    what the database raises; then nothing was saved."""
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
        verdicts: list[Verdict | Inline] = [None] * len(deliveries)
        runs: dict[int, Run] = {}
        inline: dict[int, Inline] = {}
        for index, delivery in enumerate(deliveries):
            if (retry_after := throttles[index]) is not None:
                verdicts[index] = Throttled(retry_after)  # as the view would answer it
                continue
            subscription = subscriptions.get(delivery.token)
            path = fast_path(subscription)
            if subscription is None or path is None:
                continue  # the view answers it
            run = _run_for(subscription, delivery)
            if run is None:
                continue  # the view answers it (400)
            if path == INLINE:
                inline[index] = Inline(run, sync_budget(subscription))
            else:
                runs[index] = run
    for index, verdict in _repeated_keys(inline).items():
        del inline[index]
        verdicts[index] = verdict  # the first run's answer, or the view's (None)
    for index, started in inline.items():
        verdicts[index] = started
    if not runs:  # nothing to write (the view takes the others)
        return verdicts, generations
    saved = _insert_committed(list(runs.values()))
    for index, run in runs.items():
        if run.pk in saved:
            verdicts[index] = webhook_outcome(run, True)
        # else its idempotency key was taken: the view answers with the first run
    return verdicts, generations


def _run_for(subscription: TriggerSubscription, delivery: Delivery) -> Run | None:
    """The new run a delivery starts (not saved), or None for a body or header it cannot
    take."""
    try:
        parsed = webhook_delivery(
            body=delivery.body,
            content_type=delivery.content_type,
            headers=delivery.headers,
            query=delivery.query,
        )
    except WebhookRejected:
        return None
    run = run_new(
        flow=subscription.flow,
        version=subscription.version,
        trigger=Trigger.WEBHOOK,
        payload=parsed.payload,
        idempotency_key=parsed.event_id,
        correlation_id=parsed.correlation_id,
    )
    run.workspace = subscription.flow.workspace  # for the run's URL, without a query
    return run


def _repeated_keys(inline: dict[int, Inline]) -> dict[int, Verdict]:
    """The sync deliveries not to run: an earlier run holds their idempotency key (answered
    with it), or another delivery of the batch does (left to the view, which answers with
    that run once it is saved). One query, when any delivery has a key."""
    keyed = {index: started.run for index, started in inline.items() if started.run.idempotency_key}
    if not keyed:
        return {}
    earlier = {
        (run.flow_id, run.idempotency_key): run
        for run in Run.objects.filter(
            flow_id__in={run.flow_id for run in keyed.values()},
            idempotency_key__in={run.idempotency_key for run in keyed.values()},
        ).select_related("workspace")
    }
    repeated: dict[int, Verdict] = {}
    seen: set[tuple[Any, str | None]] = set()
    for index, run in keyed.items():
        key = (run.flow_id, run.idempotency_key)
        if key in earlier:
            repeated[index] = webhook_outcome(earlier[key], False)
        elif key in seen:
            repeated[index] = None
        seen.add(key)
    return repeated


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


def _unreachable() -> tuple[type[BaseException], ...]:
    from studio.outage import UNREACHABLE

    return UNREACHABLE


class InlineRuns:
    """The sync webhooks' runs of the batcher's thread, advanced in one session of the
    engine, as a drain advances its batch: a delivery's run is written leased, with its
    first steps, in the transaction of the others taken with it (``advance_new`` for many);
    while call-outs (the model service, HTTP) are in flight the thread goes on taking
    deliveries, and their outcomes are recorded in rounds of their own. A caller is
    answered as soon as its run has ended, or ran out of its budget (a worker finishes it:
    202)."""

    def __init__(self) -> None:
        self.session = Session(uuid.uuid4().hex, one_by_one_on_failure=False)
        self.pending: dict[Any, tuple[Delivery, RunExecutor]] = {}
        # Set while the thread waits for calls: a new delivery then wakes it.
        self.waiting_on_calls = False

    @property
    def busy(self) -> bool:
        return self.session.busy

    def start(self, started: list[tuple[Delivery, Inline]]) -> list[tuple[Delivery, Verdict]]:
        """Advance the new runs (one round per budget, mostly one); the answers of the
        runs that ended. A round that fails saved nothing: its callers go to the view, or
        get a 503 when the database is out of reach."""
        answers: list[tuple[Delivery, Verdict]] = []
        by_budget = sorted(started, key=lambda pair: pair[1].budget)
        for budget, pairs in groupby(by_budget, key=lambda pair: pair[1].budget):
            group = list(pairs)
            for _, item in group:
                lifecycle.claim_new(
                    item.run, self.session.owner, lease_seconds=claims.lease_seconds()
                )
            try:
                executors = self.session.start(
                    [item.run for _, item in group], budget_seconds=budget, insert=True
                )
            except _unreachable() as error:
                logger.warning("database unavailable for %d sync webhooks: %s", len(group), error)
                answers += [(delivery, Unavailable()) for delivery, _ in group]
                continue
            except Exception:  # rolled back: the view takes each delivery again, from scratch
                logger.exception("sync webhook batch failed; the view takes its deliveries")
                answers += [(delivery, None) for delivery, _ in group]
                continue
            for (delivery, _), executor in zip(group, executors, strict=True):
                delivery.ran_inline = True
                self.pending[executor.run.pk] = (delivery, executor)
        return answers + self._settled(failed=False)

    def wait(self, waiting: queue.SimpleQueue[Delivery]) -> list[tuple[Delivery, Verdict]]:
        """Wait for call-outs (until one ends, a delivery arrives, or a while), record
        those that ended; the answers of the runs that ended with them."""
        self.waiting_on_calls = True
        try:
            if not waiting.empty():  # arrived before the flag was up: no wake-up is coming
                return []
            self.session.wait(CALLS_WAIT_SECONDS)
        except Exception:  # the round's runs were let go: a worker goes on with them
            logger.exception("recording the call-outs of sync webhooks failed")
            time.sleep(CALLS_WAIT_SECONDS / 5)  # not a busy loop while the database is out
            return self._settled(failed=True)
        finally:
            self.waiting_on_calls = False
        return self._settled(failed=False)

    def wake(self) -> None:
        self.session.calls.wake()

    def _settled(self, *, failed: bool) -> list[tuple[Delivery, Verdict]]:
        """The answers of pending runs the session no longer holds: each ended, or was
        handed over (its budget ran out, or, ``failed``, its round was rolled back: what
        the run holds then was never saved)."""
        holding = self.session.holding
        answers: list[tuple[Delivery, Verdict]] = []
        for run_id in [run_id for run_id in self.pending if run_id not in holding]:
            delivery, executor = self.pending.pop(run_id)
            answers.append((delivery, _outcome(executor.run, failed=failed)))
        return answers


def _outcome(run: Run, *, failed: bool) -> WebhookOutcome:
    if failed:
        return handed_over_outcome(run)
    try:
        return inline_outcome(run)
    except Exception:  # handing it to a worker failed (the broker): the reconciler will
        logger.exception("run %s: could not hand it over to a worker", run.pk)
        return handed_over_outcome(run)


# Put in the queue at exit: the batcher's thread ends (see ``Batcher._stop``).
_STOP = Delivery(token="", body=b"", content_type="", headers={}, query={})


class Batcher:
    """The process's batcher thread (started on first use, so after a fork)."""

    def __init__(self) -> None:
        self.waiting: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._pid = 0
        self._lock = threading.Lock()
        self._inline: InlineRuns | None = None
        self._thread: threading.Thread | None = None
        self._stopped_at_exit = False

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
                self.waiting, self._inline = queue.SimpleQueue(), None
                self._thread = threading.Thread(
                    target=self._serve, name="flowgate-ingress", daemon=True
                )
                self._thread.start()
                if not self._stopped_at_exit:
                    atexit.register(self._stop)  # (a forked child inherits it)
                    self._stopped_at_exit = True
                self._pid = os.getpid()
        self.waiting.put(delivery)
        if (inline := self._inline) is not None and inline.waiting_on_calls:
            inline.wake()

    def _stop(self) -> None:
        """At exit, end the thread, so that what it keeps goes with it: the policy engines
        its sync runs compiled, which regorus lets no other thread drop (the interpreter's
        teardown did, with an error on every exit)."""
        if self._pid != os.getpid() or self._thread is None:
            return
        self._put(_STOP)
        self._thread.join(timeout=2)
        with self._lock:
            self._pid, self._thread = 0, None  # a later delivery starts another

    def _serve(self) -> None:
        waiting = self.waiting
        inline = self._inline = InlineRuns()
        join_seconds = float(settings.FLOWGATE["WEBHOOK_BATCH_JOIN_SECONDS"])
        answered = 1  # by the last batch
        while True:
            try:
                if inline.busy:
                    batch = take_queued(waiting, MAX_BATCH)
                    if not batch:
                        _answer(inline.wait(waiting))
                        continue
                else:
                    # The callers just answered are likely to send again at once: the first
                    # to arrive waits a moment for the others, rather than going alone
                    # (under sixteen callers batches went 1, 7, 1, 7, ...: each batch's
                    # cost of its own spent twice).
                    batch = take_burst(
                        waiting, MAX_BATCH, expected=answered, join_seconds=join_seconds
                    )
                answered = len(batch)
                if _STOP in batch:  # the process exits: nobody waits for an answer
                    connection.close()
                    return
                self._settle(batch, inline)
                if waiting.empty() and not inline.busy:
                    connection.close()  # idle: back to the pool, not kept
            except Exception:  # the thread serves every later request: it must not end
                logger.exception("webhook batcher")

    @staticmethod
    def _settle(batch: list[Delivery], inline: InlineRuns) -> None:
        generations: list[bytes | None] | None = None
        try:
            verdicts, generations = accept(batch)
        except _unreachable() as error:
            logger.warning("database unavailable for %d webhook deliveries: %s", len(batch), error)
            verdicts = [Unavailable()] * len(batch)
        except Exception:  # rolled back: the view takes each delivery again, from scratch
            logger.exception("webhook batch failed; the view takes its deliveries")
            verdicts = [None] * len(batch)
        started = [(d, v) for d, v in zip(batch, verdicts, strict=True) if isinstance(v, Inline)]
        # The async callers first: their runs are saved, and the sync ones' take a while.
        _answer([(d, v) for d, v in zip(batch, verdicts, strict=True) if not isinstance(v, Inline)])
        try:
            if started:
                with snapshot(generations):
                    _answer(inline.start(started))
        finally:
            # As at the end of a request: back to the pool, or closed when broken or old.
            close_old_connections()


def _answer(answers: list[tuple[Delivery, Any]]) -> None:
    """Give each delivery its verdict: those awaited on an event loop with one call into
    each loop, the others through their future."""
    on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Verdict], Verdict]]]
    on_loops = {}
    for delivery, verdict in answers:
        if (waiter := delivery.waiter) is not None:
            on_loops.setdefault(waiter.get_loop(), []).append((waiter, verdict))
            continue
        with contextlib.suppress(InvalidStateError):  # its caller gave up (cancelled)
            delivery.answer.set_result(verdict)
    for loop, waiters in on_loops.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_wake_waiters, waiters)


def _wake_waiters(waiters: list[tuple[asyncio.Future[Verdict], Verdict]]) -> None:
    """On the callers' loop: each waiter gets its verdict, unless its caller gave up."""
    for waiter, verdict in waiters:
        if not waiter.done():
            waiter.set_result(verdict)


batcher = Batcher()
