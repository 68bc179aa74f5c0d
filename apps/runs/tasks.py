"""Celery entry points for the engine. Thin: they take ids and call the engine.

Queued runs (new, resumed, retried) are not sent one message each: committing one asks
for a *drain* (``request_drain``), and a drain claims queued runs in batches, so a burst
of runs costs a few messages and a few transactions rather than one of each per run. A
flag in Redis keeps one drain request outstanding at a time: a run queued while a drain
is pending is found by that drain, because the drain takes the flag down as it starts,
before its first claim. (Taken down before each of a drain's claims, the flag let every
claim — twenty a second while calls are in flight — cost a Redis round trip and open the
door to one more request, which the other worker then ran as a drain of its own.)
Postgres stays the source of truth: a lost request delays queued runs until the
reconciler re-drives them, it never loses them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import kombu.exceptions
import redis
from celery import shared_task
from django.conf import settings
from django.db import transaction

from apps.core.redis_clients import redis_client
from apps.core.tracing import continued_trace, outside_any_trace

from . import reconciler
from .engine import advance, drain_queued

logger = logging.getLogger("flowgate.engine")
# The flag outlives a lost request by this long at most; the reconciler covers the rest.
DRAIN_FLAG_SECONDS = 5


@shared_task(name="runs.advance", ignore_result=True)
def advance_run(run_id: str) -> None:
    advance(run_id)


@shared_task(name="runs.drain", ignore_result=True)
def drain() -> None:
    # A run queued from now on either is seen by this drain's claims or, finding the flag
    # down, asks for a drain of its own.
    _clear_drain_flag()
    drain_queued(
        # Only when none is pending: the queue of drain requests stays bounded however
        # large the backlog (a pending drain finds every queued run; drains poll the queue).
        wake_another=_request_drain_now,
        batch_size=settings.FLOWGATE["DRAIN_BATCH_SIZE"],
        seconds=settings.FLOWGATE["DRAIN_SECONDS"],
    )


def enqueue_advance(
    run_id: Any, trace_context: Mapping[str, str] | None, *, countdown: float | None = None
) -> None:
    """After commit (at once outside a transaction), ask a worker to advance the run. The
    message carries the run's stored trace context, so the task continues the run's trace
    whoever enqueues it: a retry's backoff, the reconciler, the webhook's overflow."""

    def send() -> None:
        with continued_trace(trace_context):
            advance_run.apply_async(args=[str(run_id)], countdown=countdown)

    transaction.on_commit(send)


def request_drain() -> None:
    """After commit, make sure a drain will look at the queue: send one unless one is
    pending already."""
    transaction.on_commit(_request_drain_now)


def _request_drain_now() -> None:
    _ask_for_drain(unless_pending=True)


def _send_drain_now() -> None:
    _ask_for_drain(unless_pending=False)


def _ask_for_drain(*, unless_pending: bool) -> None:
    """Raise the flag and publish a drain (only when the flag was down, if asked). The
    work is committed whatever happens here: a request that cannot be sent (the broker is
    down) is logged, not raised, its flag is taken down so that the next request tries
    again, and meanwhile the reconciler re-drives the queued runs it finds."""
    flag = _drain_flag()
    try:
        if redis_client().set(flag, 1, nx=unless_pending, ex=DRAIN_FLAG_SECONDS):
            # Each run the drain advances continues its own trace (see the executor).
            with outside_any_trace():
                drain.apply_async()
    except (redis.RedisError, kombu.exceptions.OperationalError) as error:
        logger.warning("no drain requested (%s); the reconciler will re-drive queued runs", error)
        with suppress(redis.RedisError):
            redis_client().delete(flag)


def _clear_drain_flag() -> None:
    redis_client().delete(_drain_flag())


def _drain_flag() -> str:
    # Deployments (and test runs) sharing one Redis have queues of their own.
    return f"flowgate:drain-requested:{drain.app.conf.task_default_queue}"


class CeleryDispatcher:
    """The engine's way up (``engine/dispatch.py``), through Celery and the services."""

    def request_drain(self, *, even_if_pending: bool = False) -> None:
        if even_if_pending:  # the pending request did not take these runs: it was lost
            transaction.on_commit(_send_drain_now)
        else:
            request_drain()

    def enqueue_advance(
        self, run_id: Any, trace_context: Mapping[str, str] | None, *, countdown: float | None
    ) -> None:
        enqueue_advance(run_id, trace_context, countdown=countdown)

    def resume_step(self, *, run_id: Any, node_id: str, signal: dict[str, Any]) -> None:
        from .services import step_resume

        step_resume(run_id=run_id, node_id=node_id, signal=signal)


@shared_task(name="runs.reconcile", ignore_result=True)
def reconcile() -> None:
    reconciler.reconcile()


@shared_task(name="runs.schedules_tick", ignore_result=True)
def schedules_tick() -> None:
    """Every minute (beat): start the scheduled flows that are due."""
    from .schedules import schedules_tick as tick

    tick()


@shared_task(name="runs.purge_expired", ignore_result=True)
def purge_expired() -> None:
    """Daily: delete finished runs older than each workspace's retention (audit kept)."""
    from .services import runs_purge

    runs_purge()
