"""Celery entry points for the engine. Thin: they take ids and call the engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import shared_task
from django.db import transaction

from apps.core.tracing import continued_trace

from . import reconciler
from .engine import advance


@shared_task(name="runs.advance", ignore_result=True)
def advance_run(run_id: str) -> None:
    advance(run_id)


def enqueue_advance(
    run_id: Any, trace_context: Mapping[str, str] | None, *, countdown: float | None = None
) -> None:
    """After commit (at once outside a transaction), ask a worker to advance the run. The
    message carries the run's stored trace context, so the task continues the run's trace
    whoever enqueues it: the request that started it, a decision, the reconciler."""

    def send() -> None:
        with continued_trace(trace_context):
            advance_run.apply_async(args=[str(run_id)], countdown=countdown)

    transaction.on_commit(send)


@shared_task(name="runs.reconcile", ignore_result=True)
def reconcile() -> None:
    reconciler.reconcile()


@shared_task(name="runs.start_scheduled", ignore_result=True)
def start_scheduled(flow_id: str) -> None:
    from .triggers import start_scheduled_run

    start_scheduled_run(flow_id=flow_id)


@shared_task(name="runs.purge_expired", ignore_result=True)
def purge_expired() -> None:
    """Daily: delete finished runs older than each workspace's retention (audit kept)."""
    from .services import runs_purge

    runs_purge()
