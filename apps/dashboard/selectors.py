"""Operational figures read from Postgres, the source of truth: the dashboard page shows
them per workspace, ``/metrics`` exports them for every workspace.

Reading Postgres (not per-process counters) means every web and worker process, however
many there are, is counted once, and a restarted process loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Aggregate, Count, F, FloatField, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncHour, TruncMinute
from django.utils import timezone

from apps.runs.models import TERMINAL_RUN_STATUSES, Run, RunStatus, StepRun, StepStatus

# Step duration histogram buckets, in seconds (Prometheus convention).
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FINISHED_STEP_STATUSES = (StepStatus.SUCCEEDED, StepStatus.FAILED)


class Percentile(Aggregate):  # type: ignore[type-arg]
    """Postgres ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


def _runs(workspace: Any | None) -> QuerySet[Run]:
    return Run.objects.all() if workspace is None else Run.objects.filter(workspace=workspace)


def _steps(workspace: Any | None) -> QuerySet[StepRun]:
    steps = StepRun.objects.all()
    return steps if workspace is None else steps.filter(run__workspace=workspace)


# --- counters and gauges (all time, or since a moment) -----------------------------------
def runs_by_status(
    *, workspace: Any | None = None, since: datetime | None = None
) -> dict[str, int]:
    runs = _runs(workspace)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    counts = dict(runs.values_list("status").annotate(count=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in RunStatus.values}


def runs_by_trigger(*, workspace: Any | None = None) -> dict[str, int]:
    return dict(_runs(workspace).values_list("trigger").annotate(count=Count("id")).order_by())


def queue_lag_seconds(*, workspace: Any | None = None, now: datetime | None = None) -> float:
    """How long the oldest run that is due (queued, its wake-up time passed) has waited."""
    now = now or timezone.now()
    due_since = (
        _runs(workspace)
        .filter(status=RunStatus.QUEUED)
        .filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now))
        .aggregate(due_since=Min(Coalesce(F("wake_at"), F("updated_at"))))["due_since"]
    )
    return max((now - due_since).total_seconds(), 0.0) if due_since else 0.0


def waiting_steps(*, workspace: Any | None = None) -> dict[str, int]:
    """Steps parked on a wait (approval, delay, callback, sub-flow), by kind."""
    steps = _steps(workspace).filter(status=StepStatus.WAITING)
    return dict(steps.values_list("wait_kind").annotate(count=Count("id")).order_by("wait_kind"))


def step_outcomes(*, workspace: Any | None = None) -> dict[tuple[str, str], int]:
    """Attempts per (block type, status): failures and retries, for error and retry rates."""
    rows = (
        _steps(workspace)
        .filter(status__in=(*FINISHED_STEP_STATUSES, StepStatus.RETRY_SCHEDULED))
        .values_list("block_type", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {(block, status): count for block, status, count in rows}


@dataclass(frozen=True)
class ReviewBacklog:
    open: int
    overdue: int
    oldest_seconds: float  # age of the oldest open task (0 when none)


def review_backlog(*, workspace: Any | None = None, now: datetime | None = None) -> ReviewBacklog:
    """Open review tasks (of runs still waiting for them), overdue ones, oldest age."""
    from apps.inbox.models import OPEN_TASK_STATUSES, ReviewTask

    now = now or timezone.now()
    tasks = ReviewTask.objects.filter(status__in=OPEN_TASK_STATUSES).exclude(
        run__status__in=TERMINAL_RUN_STATUSES
    )
    if workspace is not None:
        tasks = tasks.filter(workspace=workspace)
    figures = tasks.aggregate(
        open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)), oldest=Min("created_at")
    )
    oldest = (now - figures["oldest"]).total_seconds() if figures["oldest"] else 0.0
    return ReviewBacklog(figures["open"], figures["overdue"], max(oldest, 0.0))


@dataclass(frozen=True)
class Histogram:
    block: str
    buckets: list[tuple[float, int]]  # (upper bound in seconds, cumulative count)
    count: int
    sum_seconds: float


def step_duration_histograms(*, workspace: Any | None = None) -> list[Histogram]:
    """Cumulative duration histograms of finished step attempts per block type, counted
    by Postgres in one query."""
    buckets = {
        f"le_{index}": Count("id", filter=Q(duration_ms__lte=bound * 1000))
        for index, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        _steps(workspace)
        .filter(status__in=FINISHED_STEP_STATUSES)
        .exclude(duration_ms=None)
        .values("block_type")
        .annotate(count=Count("id"), total_ms=Sum("duration_ms"), **buckets)
        .order_by("block_type")
    )
    return [
        Histogram(
            block=row["block_type"],
            count=row["count"],
            sum_seconds=float(row["total_ms"] or 0) / 1000,
            buckets=[(bound, row[f"le_{i}"]) for i, bound in enumerate(DURATION_BUCKETS)],
        )
        for row in rows
    ]


# --- the dashboard page (one workspace, one time range) ----------------------------------
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


def range_start(name: str, *, now: datetime | None = None) -> datetime:
    """The start of a named range; ``today`` is since local midnight."""
    now = now or timezone.now()
    if name in RANGES:
        return now - RANGES[name]
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def step_latency_by_block(*, workspace: Any, since: datetime) -> list[dict[str, Any]]:
    """p50/p95/p99 duration and counts of finished step attempts per block type."""
    rows = (
        _steps(workspace)
        .filter(started_at__gte=since, status__in=FINISHED_STEP_STATUSES)
        .exclude(duration_ms=None)
        .values("block_type")
        .annotate(
            count=Count("id"),
            failed=Count("id", filter=Q(status=StepStatus.FAILED)),
            p50=Percentile("duration_ms", 0.5),
            p95=Percentile("duration_ms", 0.95),
            p99=Percentile("duration_ms", 0.99),
        )
        .order_by("-p95")
    )
    return list(rows)


BUCKET_MINUTES = {"1h": 5, "today": 60, "24h": 60, "7d": 360}


def bucket_start(moment: datetime, minutes: int) -> datetime:
    """The start of the ``minutes``-long bucket (aligned to UTC midnight) holding ``moment``."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (moment - midnight) // timedelta(minutes=minutes)
    return midnight + offset * timedelta(minutes=minutes)


def runs_over_time(*, workspace: Any, since: datetime, minutes: int) -> dict[datetime, dict]:
    """Runs created since ``since`` per ``minutes``-long bucket: total, succeeded, failed.
    Postgres counts per minute or hour; at most a few hundred rows are merged here."""
    truncate = TruncMinute if minutes < 60 else TruncHour
    rows = (
        _runs(workspace)
        .filter(created_at__gte=since)
        .annotate(moment=truncate("created_at", tzinfo=UTC))
        .values("moment")
        .annotate(
            total=Count("id"),
            succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=RunStatus.FAILED)),
        )
        .order_by("moment")
    )
    buckets: dict[datetime, dict] = {}
    for row in rows:
        bucket = buckets.setdefault(
            bucket_start(row["moment"], minutes), {"total": 0, "succeeded": 0, "failed": 0}
        )
        for key in ("total", "succeeded", "failed"):
            bucket[key] += row[key]
    return buckets


def recent_failures(*, workspace: Any, limit: int = 8) -> list[Run]:
    return list(
        _runs(workspace)
        .filter(status=RunStatus.FAILED)
        .select_related("flow", "version")
        .order_by("-finished_at", "-created_at")[:limit]
    )
