"""The scheduler: every minute (a Celery beat entry), start each scheduled flow whose cron
matches the minute, reading the ``schedule`` subscription rows that publishing writes.

Each tick also looks back over the last few minutes, so a tick that beat sent late (or a
worker that picked it up late) still starts the runs of the minutes it covers; one run
per flow and scheduled minute is guaranteed by the idempotency key ``schedule:<minute>``.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.flows.models import TriggerSubscription
from apps.flows.subscriptions import subscriptions_of

from .blocks import cron_schedule, envelope
from .models import Run, Trigger
from .services import RunError, run_start

LOOK_BACK_MINUTES = 3


def cron_matches(schedule: Any, moment: datetime) -> bool:
    return (
        moment.minute in schedule.minute
        and moment.hour in schedule.hour
        and moment.day in schedule.day_of_month
        and moment.month in schedule.month_of_year
        and moment.isoweekday() % 7 in schedule.day_of_week  # cron: Sunday is 0
    )


def due_minutes(settings: dict[str, Any], *, now: datetime, since: datetime) -> list[datetime]:
    """The minutes (UTC, on the minute) of the look-back window, and not before ``since``,
    at which a schedule with these settings fires."""
    schedule = cron_schedule(settings["cron"])
    zone = zoneinfo.ZoneInfo(settings.get("timezone") or "UTC")
    latest = now.replace(second=0, microsecond=0)
    minutes = (latest - timedelta(minutes=back) for back in reversed(range(LOOK_BACK_MINUTES)))
    earliest = since.replace(second=0, microsecond=0)
    return [
        minute
        for minute in minutes
        if minute >= earliest and cron_matches(schedule, minute.astimezone(zone))
    ]


def schedules_tick(*, now: datetime | None = None) -> list[Run]:
    """Start the runs due now (and in the look-back window); returns the new ones."""
    now = now or timezone.now()
    started = []
    for subscription in subscriptions_of("schedule"):
        for minute in due_minutes(subscription.settings, now=now, since=subscription.activated_at):
            run = _start(subscription, minute)
            if run is not None:
                started.append(run)
    return started


def _start(subscription: TriggerSubscription, minute: datetime) -> Run | None:
    scheduled_for = minute.astimezone(zoneinfo.ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M")
    try:
        outcome = run_start(
            flow=subscription.flow,
            version=subscription.version,
            trigger=Trigger.SCHEDULE,
            payload=envelope(subscription.settings.get("body", {}), scheduled_for=scheduled_for),
            idempotency_key=f"schedule:{scheduled_for}",
        )
    except RunError:
        return None
    return outcome.run if outcome.created else None
