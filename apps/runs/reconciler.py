"""The reconciler: Postgres says what is due; this makes sure someone does it.

Runs on Celery beat every few seconds. It re-drives runs whose message was lost (Redis
restarted empty, a worker died before acknowledging) or whose lease expired, runs whose
retry is due, and waits whose deadline passed. Deadlines are compared with the database's
``now()``, never with a long Celery countdown.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models.functions import Now

from .engine.effects import due_runs_filter
from .models import Run, StepRun, StepStatus

logger = logging.getLogger("flowgate.reconciler")
BATCH = 500
# A queued run younger than this still has its message in flight.
GRACE = timedelta(seconds=5)


def reconcile() -> dict[str, int]:
    from .services import step_resume
    from .tasks import enqueue_advance

    due = list(
        Run.objects.filter(due_runs_filter(Now()))
        .filter(updated_at__lt=Now() - GRACE)
        .values_list("id", "trace_context")[:BATCH]
    )
    for run_id, trace_context in due:
        enqueue_advance(run_id, trace_context)
    expired = list(
        StepRun.objects.filter(status=StepStatus.WAITING, wait_deadline__lte=Now()).values_list(
            "run_id", "node_id"
        )[:BATCH]
    )
    for run_id, node_id in expired:
        step_resume(run_id=run_id, node_id=node_id, signal={"timeout": True})
    if due or expired:
        logger.info("reconciler re-drove %d runs and ended %d waits", len(due), len(expired))
    return {"redriven": len(due), "expired_waits": len(expired)}
