"""Celery tasks of the dashboard: thin, the work is in ``rollups``."""

from __future__ import annotations

from celery import shared_task

from .rollups import materialise as rollups_materialise


@shared_task(name="dashboard.materialise", ignore_result=True)
def materialise() -> None:
    """Count what ended since the last pass into the rollups (beat, every few seconds,
    on the control queue). A materialiser already at work counts it, so this one does
    not wait for it."""
    rollups_materialise(wait=False)
