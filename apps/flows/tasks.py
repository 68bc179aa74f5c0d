from __future__ import annotations

import logging

from celery import shared_task

from apps.connectors.email.client import SmtpFailure

from .notifications import publish_request_notify

logger = logging.getLogger(__name__)


@shared_task(name="flows.publish_request_notify", bind=True, max_retries=3, acks_late=True)
def publish_request_notify_task(self, request_id: str) -> str:
    try:
        return publish_request_notify(request_id=request_id)
    except SmtpFailure as failure:
        if failure.retryable:
            raise self.retry(countdown=30 * (self.request.retries + 1)) from None
        logger.warning("could not email publish request %s: %s", request_id, failure.message)
        return "failed"
