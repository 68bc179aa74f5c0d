"""Operational figures read from Postgres, the source of truth: the dashboard page shows
them per workspace, ``/metrics`` exports them for every workspace.

What ended (runs, step attempts, model calls, policy evaluations) is read from the
rollups (``apps.dashboard.rollups``: a few rows per minute or hour of a range, whatever
the number of runs); what is live now (queued runs, parked waits, the review backlog,
recent failures) through narrow indexed queries. Reading Postgres (not per-process
counters) means every web and worker process, however many there are, is counted once,
and a restarted process loses nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, F, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncHour, TruncMinute
from django.utils import timezone

from apps.runs.models import (
    EVALUATION_TRIGGERS,
    TERMINAL_RUN_STATUSES,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
)

from . import rollups
from .models import Rollup
from .slo import slo_status

# /metrics' step duration histogram buckets, in seconds: 1 ms to about 65 s, doubling (each
# is a bound of the rollups' buckets, so the cumulative counts are exact).
DURATION_BUCKETS = tuple(2**exponent / 1000 for exponent in range(17))
LIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)


# Evaluation runs measure a flow version on example cases; they are not the workspace's work.
def _runs(workspace: Any | None) -> QuerySet[Run]:
    """The workspace's runs; for every workspace (``/metrics``) named one by one, so that
    a filter on status reads the (workspace, status, created) index, not every run."""
    runs = Run.objects.exclude(trigger__in=EVALUATION_TRIGGERS)
    if workspace is None:
        from apps.accounts.models import Workspace

        return runs.filter(workspace__in=list(Workspace.objects.values_list("id", flat=True)))
    return runs.filter(workspace=workspace)


def _steps(workspace: Any | None) -> QuerySet[StepRun]:
    steps = StepRun.objects.exclude(run__trigger__in=EVALUATION_TRIGGERS)
    return steps if workspace is None else steps.filter(run__workspace=workspace)


# --- sums of rollup rows -------------------------------------------------------------------
@dataclass
class Rolled:
    """The rollup rows of one (kind, key) over a range, added up."""

    kind: str
    key: str
    count: int = 0
    failed: int = 0
    retries: int = 0
    total_ms: float = 0.0
    cost: float = 0.0
    tokens: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)

    def quantile(self, fraction: float) -> float | None:
        return rollups.quantile_ms(self.histogram, fraction)


def _window(since: datetime | None, now: datetime | None, *, finest: int = 0) -> Q:
    """The rollup rows covering [``since``, ``now``], from the first whole minute at or
    after ``since``; all time (``since`` None) from the all-time rows. With ``finest``
    (minutes), no row longer than that (a series of buckets that long)."""
    if since is None:
        return Q(tier=Rollup.Tier.TOTAL)
    minute = timedelta(minutes=1)
    now = (now or timezone.now()).astimezone(UTC)
    low, high = _ceil(since.astimezone(UTC), minute), _floor(now, minute) + minute
    tiers = tuple((tier, size) for tier, size in _LARGER_TIERS if not finest or tier <= finest)
    return _cover(low, high, tiers) if low < high else Q(pk__in=[])


_LARGER_TIERS = ((Rollup.Tier.DAY, timedelta(days=1)), (Rollup.Tier.HOUR, timedelta(hours=1)))


def _cover(low: datetime, high: datetime, tiers: tuple = _LARGER_TIERS) -> Q:
    """Rows covering [low, high) (on minute bounds): whole UTC days from the day rows,
    whole hours around them from the hour rows, the minutes at either end from the
    minute rows; at most five ranges of the (workspace, tier, start) index."""
    if low >= high:
        return Q()  # no rows: ORed with a whole range, leaves it as it is
    for index, (tier, size) in enumerate(tiers):
        start, end = _ceil(low, size), _floor(high, size)
        if start < end:
            smaller = tiers[index + 1 :]
            whole = Q(tier=tier, start__gte=start, start__lt=end)
            return whole | _cover(low, start, smaller) | _cover(end, high, smaller)
    return Q(tier=Rollup.Tier.MINUTE, start__gte=low, start__lt=high)


def _floor(moment: datetime, size: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment - epoch) // size * size


def _ceil(moment: datetime, size: timedelta) -> datetime:
    floor = _floor(moment, size)
    return floor if floor == moment else floor + size


def rolled(
    *,
    workspace: Any | None,
    since: datetime | None,
    now: datetime | None = None,
    kinds: tuple[str, ...] = (),
) -> dict[tuple[str, str], Rolled]:
    """The rollups of ``workspace`` (every workspace when None) since ``since`` (all time
    when None), per (kind, key): two queries, over a few rows per hour of the range."""
    rows = Rollup.objects.filter(_window(since, now))
    if workspace is not None:
        rows = rows.filter(workspace=workspace)
    if kinds:
        rows = rows.filter(kind__in=kinds)
    sums = rows.values("kind", "key").annotate(
        n=Sum("count"),
        n_failed=Sum("failed"),
        n_retries=Sum("retries"),
        ms=Sum("total_ms"),
        money=Sum("cost"),
        used=Sum("tokens"),
    )
    found = {
        (row["kind"], row["key"]): Rolled(
            row["kind"],
            row["key"],
            row["n"],
            row["n_failed"],
            row["n_retries"],
            row["ms"],
            row["money"],
            row["used"],
        )
        for row in sums.order_by()
    }
    compiler = rows.query.get_compiler(connection=connection)
    try:
        where, params = compiler.compile(rows.query.where)
    except EmptyResultSet:  # an empty range
        return found
    table = Rollup._meta.db_table
    with connection.cursor() as cursor:
        # The same rows' histograms, added up bucket by bucket by Postgres.
        cursor.execute(
            f"""SELECT {table}.kind, {table}.key, bucket, sum(n)
                  FROM {table}, unnest({table}.hist_buckets, {table}.hist_counts) AS u(bucket, n)
                 WHERE {where}
                 GROUP BY 1, 2, 3""",  # noqa: S608 (the ORM's condition, with parameters)
            params,
        )
        for kind, key, bucket, count in cursor.fetchall():
            found[kind, key].histogram[bucket] = int(count)
    return found


def _of(found: dict[tuple[str, str], Rolled], kind: str) -> list[Rolled]:
    return [row for (row_kind, _), row in sorted(found.items()) if row_kind == kind]


def _merged(rows: list[Rolled], kind: str) -> Rolled:
    total = Rolled(kind, "")
    for row in rows:
        total.count += row.count
        total.failed += row.failed
        total.retries += row.retries
        total.total_ms += row.total_ms
        total.cost += row.cost
        total.tokens += row.tokens
        for bucket, count in row.histogram.items():
            total.histogram[bucket] = total.histogram.get(bucket, 0) + count
    return total


# --- counters and gauges (all time, or since a moment) -----------------------------------
def _live_runs(
    workspace: Any | None, since: datetime | None, group: str = "status"
) -> dict[str, int]:
    """Runs not ended yet (queued, running, waiting), created since ``since``, per
    ``group``: few, read through the (workspace, status, created) index."""
    runs = _runs(workspace).filter(status__in=LIVE_RUN_STATUSES)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    return dict(runs.values_list(group).annotate(count=Count("id")).order_by())


def runs_by_status(
    *, workspace: Any | None = None, since: datetime | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Runs that ended since ``since`` (all time when None) per final status, and runs
    created since then that have not ended yet, per status."""
    ended = {row.key: row.count for row in _of(rolled_runs(workspace, since, now), "run")}
    counts = {**ended, **_live_runs(workspace, since)}
    return {status: counts.get(status, 0) for status in RunStatus.values}


def rolled_runs(
    workspace: Any | None, since: datetime | None, now: datetime | None
) -> dict[tuple[str, str], Rolled]:
    return rolled(workspace=workspace, since=since, now=now, kinds=("run", "trigger"))


def runs_by_trigger(*, workspace: Any | None = None) -> dict[str, int]:
    """Runs started per trigger: those that ended (each time it ended) and those still on."""
    counts: dict[str, int] = defaultdict(int)
    for row in _of(rolled_runs(workspace, None, None), "trigger"):
        counts[row.key] += row.count
    for trigger, count in _live_runs(workspace, None, "trigger").items():
        counts[trigger] += count
    return dict(counts)


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
    """Attempts per (block type, status): succeeded and failed ones ever, and those
    scheduled for a retry now."""
    outcomes: dict[tuple[str, str], int] = {}
    for row in _of(rolled(workspace=workspace, since=None, kinds=("step",)), "step"):
        if row.count - row.failed:
            outcomes[row.key, StepStatus.SUCCEEDED] = row.count - row.failed
        if row.failed:
            outcomes[row.key, StepStatus.FAILED] = row.failed
    scheduled = (
        _steps(workspace)
        .filter(status=StepStatus.RETRY_SCHEDULED)
        .values_list("block_type")
        .annotate(count=Count("id"))
        .order_by()
    )
    for block, count in scheduled:
        outcomes[block, StepStatus.RETRY_SCHEDULED] = count
    return outcomes


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
    """Cumulative duration histograms of finished step attempts per block type, ever."""
    bounds_ms = [bound * 1000 for bound in DURATION_BUCKETS]
    return [
        Histogram(
            block=row.key,
            count=sum(row.histogram.values()),
            sum_seconds=row.total_ms / 1000,
            buckets=list(
                zip(DURATION_BUCKETS, rollups.cumulative(row.histogram, bounds_ms), strict=True)
            ),
        )
        for row in _of(rolled(workspace=workspace, since=None, kinds=("step",)), "step")
        if row.histogram
    ]


# --- the dashboard page (one workspace, one time range) ----------------------------------
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
RANGE_NAMES = ("today", *RANGES)
BUCKET_MINUTES = {"1h": 5, "today": 60, "24h": 60, "7d": 360}
# The window /metrics judges SLOs and estimates cost over (a scrape has no range picker).
METRICS_RANGE = "24h"


def range_start(name: str, *, now: datetime | None = None) -> datetime:
    """The start of a named range; ``today`` is since local midnight, the ranges drawn
    in hourly (or longer) buckets start on the hour (the start of their first bucket)."""
    now = now or timezone.now()
    if name in RANGES:
        start = now - RANGES[name]
        if BUCKET_MINUTES[name] >= 60:
            start = start.replace(minute=0, second=0, microsecond=0)
        return start
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def _step_latency(found: dict[tuple[str, str], Rolled]) -> list[dict[str, Any]]:
    rows = [
        {
            "block_type": row.key,
            "count": row.count,
            "failed": row.failed,
            "p50": row.quantile(0.5),
            "p95": row.quantile(0.95),
            "p99": row.quantile(0.99),
        }
        for row in _of(found, "step")
    ]
    return sorted(rows, key=lambda row: -(row["p95"] or 0))


def step_latency_by_block(*, workspace: Any, since: datetime) -> list[dict[str, Any]]:
    """p50/p95/p99 duration and counts of finished step attempts per block type."""
    return _step_latency(rolled(workspace=workspace, since=since, kinds=("step",)))


def _step_error_rates(found: dict[tuple[str, str], Rolled]) -> dict[str, Any]:
    total = _merged(_of(found, "step"), "step")
    attempts = total.count
    return {
        "attempts": attempts,
        "failed": total.failed,
        "retries": total.retries,
        "error_rate": total.failed / attempts if attempts else None,
        "retry_rate": total.retries / attempts if attempts else None,
    }


def step_error_rates(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """Step attempts that ended since ``since``: the share that raised an error (whether
    retried or not) and the share that were retries of an earlier attempt."""
    return _step_error_rates(rolled(workspace=workspace, since=since, kinds=("step",)))


def _latency_figures(found: dict[tuple[str, str], Rolled], kind: str, *extra: str) -> dict:
    """Calls, p50 and p95 (and the ``extra`` sums) of one kind of call, in total and per
    model or policy (slowest first)."""

    def figures(row: Rolled) -> dict[str, Any]:
        return {
            "calls": row.count,
            "p50_ms": row.quantile(0.5),
            "p95_ms": row.quantile(0.95),
            **{name: getattr(row, name) for name in extra},
        }

    rows = [{"name": row.key, **figures(row)} for row in _of(found, kind)]
    rows.sort(key=lambda row: -(row["p95_ms"] or 0))
    return {**figures(_merged(_of(found, kind), kind)), "rows": rows}


def _model_figures(found: dict[tuple[str, str], Rolled]) -> dict[str, Any]:
    figures = _latency_figures(found, "model", "cost")
    calls = figures["calls"]
    figures["cost_per_1000"] = figures["cost"] / calls * 1000 if calls else None
    return figures


def model_call_figures(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """Answered ``model.predict`` calls since ``since``: latency as the block measured it,
    per model and in total, and the estimated cost (each step records its call's cost)."""
    return _model_figures(rolled(workspace=workspace, since=since, kinds=("model",)))


AI_BLOCKS = rollups.AI_BLOCKS


def ai_call_figures(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """Answered ``ai.*`` steps since ``since``, in total and per model: latency, tokens
    (prompt + completion, retries included) and estimated cost, as each step recorded."""
    found = rolled(workspace=workspace, since=since, kinds=("ai",))
    return _latency_figures(found, "ai", "cost", "tokens")


def policy_evaluation_figures(*, workspace: Any, since: datetime) -> dict[str, Any]:
    """``policy.evaluate`` steps since ``since`` that ran a policy: evaluation time as the
    policy engine measured it, per policy and in total."""
    return _latency_figures(rolled(workspace=workspace, since=since, kinds=("policy",)), "policy")


def bucket_start(moment: datetime, minutes: int) -> datetime:
    """The start of the ``minutes``-long bucket (aligned to UTC midnight) holding ``moment``."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (moment - midnight) // timedelta(minutes=minutes)
    return midnight + offset * timedelta(minutes=minutes)


def runs_over_time(
    *, workspace: Any, since: datetime, minutes: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Runs per ``minutes``-long bucket and status since ``since``, every bucket up to now
    included (empty ones too): those that ended, in the bucket they ended in (from the
    rollups), and those not ended yet, in the bucket they were created in."""
    now = now or timezone.now()
    ended = (
        Rollup.objects.filter(_window(since, now, finest=minutes), workspace=workspace)
        .filter(kind="run")
        .values_list("start", "key")
        .annotate(count=Sum("count"))
        .order_by()
    )
    truncate = TruncMinute if minutes < 60 else TruncHour
    live = (
        _runs(workspace)
        .filter(status__in=LIVE_RUN_STATUSES, created_at__gte=since)
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
    for moment, status, runs in [*ended, *live]:
        index = int((bucket_start(moment, minutes) - first) / size)
        if 0 <= index < count:
            series[index][status] += runs
    return series


def slo_targets_get(*, workspace: Any) -> Any:
    """The workspace's SLO targets; the defaults until an admin saves them."""
    from .models import SloTargets

    return SloTargets.objects.filter(workspace=workspace).first() or SloTargets(workspace=workspace)


def _run_figures(by_status: dict[str, int], since: datetime, now: datetime) -> dict[str, Any]:
    total = sum(by_status.values())
    finished = by_status[RunStatus.SUCCEEDED] + by_status[RunStatus.FAILED]
    return {
        "by_status": by_status,
        "total": total,
        "per_minute": total / max((now - since).total_seconds() / 60, 1),
        "failure_rate": by_status[RunStatus.FAILED] / finished if finished else None,
        "success_percent": 100 * by_status[RunStatus.SUCCEEDED] / finished if finished else None,
    }


def run_figures(*, workspace: Any, since: datetime, now: datetime) -> dict[str, Any]:
    """Runs since ``since`` (ended then, or created then and still on): by status, in
    total, per minute, and the failure and success rates of the finished ones (None when
    none finished)."""
    by_status = runs_by_status(workspace=workspace, since=since, now=now)
    return _run_figures(by_status, since, now)


def dashboard_figures(*, workspace: Any, range_name: str, now: datetime | None = None) -> dict:
    """Every figure of the dashboard for one workspace over a named range (see
    ``RANGE_NAMES``), JSON-ready: the page, its JSON API and ``/metrics`` all read this.
    A constant number of queries: two over the range's rollup rows, the rest live."""
    now = now or timezone.now()
    since = range_start(range_name, now=now)
    found = rolled(workspace=workspace, since=since, now=now)
    by_status = {row.key: row.count for row in _of(found, "run")} | _live_runs(workspace, since)
    latency = _step_latency(found)
    models = _model_figures(found)
    backlog = review_backlog(workspace=workspace, now=now)
    figures: dict[str, Any] = {
        "range": range_name,
        "since": since,
        "runs": _run_figures(
            {status: by_status.get(status, 0) for status in RunStatus.values}, since, now
        ),
        "steps": {
            "latency": latency,
            "p95_slowest_ms": max((row["p95"] for row in latency), default=None),
            **_step_error_rates(found),
        },
        "models": models,
        "ai": _latency_figures(found, "ai", "cost", "tokens"),
        "policies": _latency_figures(found, "policy"),
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
    """The newest failed runs (the ``run_failed_recent`` index: a few index entries)."""
    return list(
        _runs(workspace)
        .filter(status=RunStatus.FAILED)
        .select_related("flow", "version")
        .order_by("-finished_at", "-created_at")[:limit]
    )
