"""Celery entry points for the engine. Thin: they take ids and call the engine."""

from __future__ import annotations

from celery import shared_task

from . import reconciler
from .engine import advance


@shared_task(name="runs.advance", ignore_result=True)
def advance_run(run_id: str) -> None:
    advance(run_id)


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
