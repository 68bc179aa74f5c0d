"""Thin Celery wrappers: the beat task fans out one check per workspace with samples."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.check_all", ignore_result=True)
def check_all() -> None:
    from .models import PredictionSample

    workspace_ids = PredictionSample.objects.values_list("workspace_id", flat=True).distinct()
    for workspace_id in workspace_ids:
        check_workspace.delay(str(workspace_id))


@shared_task(name="monitoring.check", ignore_result=True)
def check_workspace(workspace_id: str) -> None:
    from .checks import monitoring_check

    monitoring_check(workspace_id=workspace_id)
