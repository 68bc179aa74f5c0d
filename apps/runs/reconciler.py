"""The reconciler: Postgres says what is due; this makes sure someone does it.

Runs on Celery beat every few seconds, on a queue (and a worker process) of its own so its
ticks never wait behind drains. It queues again runs whose message was lost (Redis
restarted empty), whose worker died (their short lease expired) or whose retry or wake-up
is due, and asks for a drain: the drains advance them in batches. It ends waits whose
deadline passed. Deadlines are compared with the database's ``now()``, never with a long
Celery countdown.
"""

from __future__ import annotations

import logging

from django.db.models.functions import Now

from .engine import claims
from .engine.dispatch import dispatcher
from .models import StepRun, StepStatus

logger = logging.getLogger("flowgate.reconciler")
BATCH = 500
# A queued run younger than this still has its drain request in flight.
GRACE_SECONDS = 5


def reconcile() -> dict[str, int]:
    due = claims.requeue_due(grace_seconds=GRACE_SECONDS, limit=BATCH)
    if due:
        dispatcher().request_drain(even_if_pending=True)
    expired = list(
        StepRun.objects.filter(status=StepStatus.WAITING, wait_deadline__lte=Now()).values_list(
            "run_id", "node_id"
        )[:BATCH]
    )
    for run_id, node_id in expired:
        dispatcher().resume_step(run_id=run_id, node_id=node_id, signal={"timeout": True})
    if due or expired:
        logger.info("reconciler re-drove %d runs and ended %d waits", len(due), len(expired))
    return {"redriven": len(due), "expired_waits": len(expired)}
