"""Operational tasks that belong to no domain."""

from celery import shared_task


@shared_task(name="core.ping")
def ping(value: str) -> str:
    """Echo ``value`` back: proves a worker is consuming the broker."""
    return f"pong:{value}"
