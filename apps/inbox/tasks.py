from __future__ import annotations

import logging

from celery import shared_task

from apps.connectors.email.client import SmtpFailure

from .notifications import task_notify

logger = logging.getLogger(__name__)


@shared_task(name="inbox.notify", bind=True, max_retries=3, acks_late=True)
def notify_task(self, task_id: str) -> str:
    try:
        return task_notify(task_id=task_id)
    except SmtpFailure as failure:
        if failure.retryable:
            raise self.retry(countdown=30 * (self.request.retries + 1)) from None
        logger.warning("could not email review task %s: %s", task_id, failure.message)
        return "failed"
