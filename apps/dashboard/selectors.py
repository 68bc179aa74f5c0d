"""Operational figures read from Postgres, the source of truth: the dashboard page shows
them per workspace, ``/metrics`` exports them for every workspace.

Reading Postgres (not per-process counters) means every web and worker process, however
many there are, is counted once, and a restarted process loses nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Aggregate, Count, F, FloatField, Min, Q, QuerySet, Sum
from django.db.models.fields.json import KT, KeyTextTransform
from django.db.models.functions import Cast, Coalesce, TruncHour, TruncMinute
from django.utils import timezone

from apps.runs.models import (
    EVALUATION_TRIGGERS,
    TERMINAL_RUN_STATUSES,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
)

from .slo import slo_status

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


# Evaluation runs measure a flow version on example cases; they are not the workspace's work.
def _runs(workspace: Any | None) -> QuerySet[Run]:
    runs = Run.objects.exclude(trigger__in=EVALUATION_TRIGGERS)
    return runs if workspace is None else runs.filter(workspace=workspace)


def _steps(workspace: Any | None) -> QuerySet[StepRun]:
    steps = StepRun.objects.exclude(run__trigger__in=EVALUATION_TRIGGERS)
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


def _due_runs(workspace: Any | None, now: datetime) -> QuerySet[Run]:
    """Runs waiting for a worker: queued, and their wake-up time (if any) passed."""
    queued = _runs(workspace).filter(status=RunStatus.QUEUED)
    return queued.filter(Q(wake_at__isnull=True) | Q(wake_at__lte=now))


def queue_lag_seconds(*, workspace: Any | None = None, now: datetime | None = None) -> float:
    """How long the oldest run that is due has waited."""
    now = now or timezone.now()
    due_since = _due_runs(workspace, now).aggregate(
        due_since=Min(Coalesce(F("wake_at"), F("updated_at")))
    )["due_since"]
    return max((now - due_since).total_seconds(), 0.0) if due_since else 0.0


def queue_depth(*, workspace: Any | None = None, now: datetime | None = None) -> int:
    """How many runs are due and not picked up by a worker yet."""
    return _due_runs(workspace, now or timezone.now()).count()


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
            buckets=[
                (bound, row[f"le_{i}"])  # type: ignore[literal-required]  # keys built by the query
                for i, bound in enumerate(DURATION_BUCKETS)
            ],
        )
        for row in rows
    ]


# --- the dashboard page (one workspace, one time range) ----------------------------------
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
RANGE_NAMES = ("today", *RANGES)
BUCKET_MINUTES = {"1h": 5, "today": 60, "24h": 60, "7d": 360}
# The window /metrics judges SLOs and estimates cost over (a scrape has no range picker).
METRICS_RANGE = "24h"


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
    return [dict(row) for row in rows]


def step_error_rates(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """Step attempts run since ``since``: the share that raised an error (whether retried
    or not) and the share that were retries of an earlier attempt."""
    figures = (
        _steps(workspace)
        .filter(started_at__gte=since, status__in=FINISHED_STEP_STATUSES)
        .aggregate(
            attempts=Count("id"),
            failed=Count("id", filter=Q(status=StepStatus.FAILED)),
            retries=Count("id", filter=Q(attempt__gt=1)),
        )
    )
    attempts = figures["attempts"]
    return {
        **figures,
        "error_rate": figures["failed"] / attempts if attempts else None,
        "retry_rate": figures["retries"] / attempts if attempts else None,
    }


def _meta_number(key: str) -> Cast:
    return Cast(KeyTextTransform(key, "meta"), FloatField())


def _latency_rows(steps: QuerySet[StepRun], group: str, latency: str, **extra: Any) -> dict:
    """Calls, p50 and p95 of the ``latency`` number in the steps' meta, in total and per
    value of the ``group`` meta key (a model, a policy)."""
    figures = {
        "calls": Count("id"),
        "p50_ms": Percentile(_meta_number(latency), 0.5),
        "p95_ms": Percentile(_meta_number(latency), 0.95),
        **extra,
    }
    steps = steps.filter(**{f"meta__{latency}__isnull": False})
    rows = (
        steps.annotate(name=KeyTextTransform(group, "meta"))
        .values("name")
        .annotate(**figures)
        .order_by(F("p95_ms").desc(nulls_last=True))
    )
    return {**steps.aggregate(**figures), "rows": list(rows)}


def model_call_figures(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """Answered ``model.predict`` calls since ``since``: latency as the block measured it,
    per model and in total, and the estimated cost (each step records its call's cost)."""
    steps = _steps(workspace).filter(
        block_type="model.predict", status=StepStatus.SUCCEEDED, started_at__gte=since
    )
    cost = Coalesce(Sum(_meta_number("cost")), 0.0)
    figures = _latency_rows(steps, "model", "latency_ms", cost=cost)
    calls = figures["calls"]
    figures["cost_per_1000"] = figures["cost"] / calls * 1000 if calls else None
    return figures


AI_BLOCKS = ("ai.generate", "ai.classify", "ai.extract")


def ai_call_figures(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """Answered ``ai.*`` steps since ``since``, in total and per model: latency, tokens
    (prompt + completion, retries included) and estimated cost, as each step recorded."""
    steps = _steps(workspace).filter(
        block_type__in=AI_BLOCKS, status=StepStatus.SUCCEEDED, started_at__gte=since
    )
    return _latency_rows(
        steps,
        "model",
        "latency_ms",
        cost=Coalesce(Sum(_meta_number("cost")), 0.0),
        tokens=Coalesce(Sum(Cast(KT("meta__usage__total"), FloatField())), 0.0),
    )


def policy_evaluation_figures(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """``policy.evaluate`` steps since ``since`` that ran a policy: evaluation time as the
    policy engine measured it, per policy and in total."""
    steps = (
        _steps(workspace)
        .filter(block_type="policy.evaluate", status=StepStatus.SUCCEEDED, started_at__gte=since)
        .exclude(meta__policy_version="")
    )
    return _latency_rows(steps, "policy", "duration_ms")


def bucket_start(moment: datetime, minutes: int) -> datetime:
    """The start of the ``minutes``-long bucket (aligned to UTC midnight) holding ``moment``."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (moment - midnight) // timedelta(minutes=minutes)
    return midnight + offset * timedelta(minutes=minutes)


def runs_over_time(
    *, workspace: Any, since: datetime, minutes: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Runs created since ``since`` per ``minutes``-long bucket and status, every bucket up
    to now included (empty ones too). Postgres counts per minute or hour and status; at most
    a few hundred rows are merged here."""
    now = now or timezone.now()
    truncate = TruncMinute if minutes < 60 else TruncHour
    rows = (
        _runs(workspace)
        .filter(created_at__gte=since)
        .annotate(moment=truncate("created_at", tzinfo=UTC))
        .values_list("moment", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    size = timedelta(minutes=minutes)
    first = bucket_start(since.astimezone(UTC), minutes)
    count = max(int((now - first) / size) + 1, 1)
    series = [
        {"start": first + index * size, **dict.fromkeys(RunStatus.values, 0)}
        for index in range(count)
    ]
    for moment, status, runs in rows:
        index = int((bucket_start(moment, minutes) - first) / size)
        if 0 <= index < count:
            series[index][status] += runs
    return series


def slo_targets_get(*, workspace: Any) -> Any:
    """The workspace's SLO targets; the defaults until an admin saves them."""
    from .models import SloTargets

    return SloTargets.objects.filter(workspace=workspace).first() or SloTargets(workspace=workspace)


def run_figures(*, workspace: Any, since: datetime, now: datetime) -> dict[str, Any]:
    """Runs created since ``since``: by status, in total, per minute, and the failure and
    success rates of the finished ones (None when none finished)."""
    by_status = runs_by_status(workspace=workspace, since=since)
    total = sum(by_status.values())
    finished = by_status[RunStatus.SUCCEEDED] + by_status[RunStatus.FAILED]
    return {
        "by_status": by_status,
        "total": total,
        "per_minute": total / max((now - since).total_seconds() / 60, 1),
        "failure_rate": by_status[RunStatus.FAILED] / finished if finished else None,
        "success_percent": 100 * by_status[RunStatus.SUCCEEDED] / finished if finished else None,
    }


def dashboard_figures(*, workspace: Any, range_name: str, now: datetime | None = None) -> dict:
    """Every figure of the dashboard for one workspace over a named range (see
    ``RANGE_NAMES``), JSON-ready: the page, its JSON API and ``/metrics`` all read this."""
    now = now or timezone.now()
    since = range_start(range_name, now=now)
    latency = step_latency_by_block(workspace=workspace, since=since)
    models = model_call_figures(workspace=workspace, since=since)
    backlog = review_backlog(workspace=workspace, now=now)
    figures: dict[str, Any] = {
        "range": range_name,
        "since": since,
        "runs": run_figures(workspace=workspace, since=since, now=now),
        "steps": {
            "latency": latency,
            "p95_slowest_ms": max((row["p95"] for row in latency), default=None),
            **step_error_rates(workspace=workspace, since=since),
        },
        "models": models,
        "ai": ai_call_figures(workspace=workspace, since=since),
        "policies": policy_evaluation_figures(workspace=workspace, since=since),
        "queue": {
            "depth": queue_depth(workspace=workspace, now=now),
            "lag_seconds": queue_lag_seconds(workspace=workspace, now=now),
            "waiting": waiting_steps(workspace=workspace),
        },
        "inbox": asdict(backlog),
        "cost": {
            "currency": settings.FLOWGATE["COST_CURRENCY"],
            "total": models["cost"],
            "per_1000_inferences": models["cost_per_1000"],
        },
    }
    figures["slo"] = slo_status(slo_targets_get(workspace=workspace), _slo_measurements(figures))
    return figures


def _slo_measurements(figures: dict[str, Any]) -> dict[str, float | None]:
    """The figure each objective of ``slo.OBJECTIVES`` is judged against."""
    return {
        "run_success_percent": figures["runs"]["success_percent"],
        "step_p95_ms": figures["steps"]["p95_slowest_ms"],
        "model_p95_ms": figures["models"]["p95_ms"],
        "policy_p95_ms": figures["policies"]["p95_ms"],
        "inbox_oldest_hours": figures["inbox"]["oldest_seconds"] / 3600,
    }


def recent_failures(*, workspace: Any, limit: int = 8) -> list[Run]:
    return list(
        _runs(workspace)
        .filter(status=RunStatus.FAILED)
        .select_related("flow", "version")
        .order_by("-finished_at", "-created_at")[:limit]
    )
