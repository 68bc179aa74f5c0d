"""Celery tasks of the audit trail: thin, the work is in ``sealing``."""

from __future__ import annotations

from celery import shared_task

from .sealing import audit_seal


@shared_task(name="audit.seal", ignore_result=True)
def seal() -> None:
    """Chain what was appended since the last seal (beat, every second). A sealer already
    at work seals these events too, so this one does not wait for it."""
    audit_seal(wait=False)
