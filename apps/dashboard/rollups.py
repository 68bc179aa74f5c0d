"""The dashboard's rollups: what ended per minute, hour, day and ever, kept as runs and
steps end, so that a figure over any range reads a few rows per minute, hour or day of it,
not the runs.

**What is counted, and when.** A database trigger (migration ``0002_rollups``) stamps a
run that reaches a final status (succeeded, failed, cancelled) and a step attempt that
reaches succeeded or failed with the id of the transaction that did it
(``rollup_xid``). ``materialise`` (the ``dashboard.materialise`` task on the control
queue every ``DASHBOARD_MATERIALISE_SECONDS``, and each dashboard read) adds to the
rollups every row stamped by a transaction between its high-water mark and the oldest
transaction of this database still open, through the ``rollup_xid`` indexes, in one
statement, and moves the mark. A transaction still open when it looks is counted by a
later pass, so nothing is counted twice or missed, whatever the clocks of the workers
say. A run that ends again (retried from a failed step) is counted at each end.

**Latency** is a histogram over fixed log-scale buckets, ``BUCKETS_PER_DOUBLING`` per
doubling of the duration from ``2**MIN_EXPONENT`` ms to ``2**MAX_EXPONENT`` ms (about
70 minutes; longer ones share the last bucket). A quantile is the geometric middle of the
bucket holding the nearest-rank sample, so it is within ``QUANTILE_ERROR`` (4.4 %) of
that sample for durations in the covered span.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.runs import lifecycle
from apps.runs.models import EVALUATION_TRIGGERS, Run, StepRun

from .models import Rollup, RollupMark

BUCKETS_PER_DOUBLING = 8
MIN_EXPONENT = -7  # 2**-7 ms ≈ 8 µs: bucket 0 holds everything up to it
MAX_EXPONENT = 22  # 2**22 ms ≈ 70 min
OFFSET = -MIN_EXPONENT * BUCKETS_PER_DOUBLING  # bucket of exactly 1 ms
LAST_BUCKET = (MAX_EXPONENT - MIN_EXPONENT) * BUCKETS_PER_DOUBLING + 1  # longer than 2**22
QUANTILE_ERROR = 2 ** (1 / (2 * BUCKETS_PER_DOUBLING)) - 1

AI_BLOCKS = ("ai.generate", "ai.classify", "ai.extract", "ai.agent")
RUN_END_STATUSES = ("succeeded", "failed", "cancelled")
STEP_END_STATUSES = ("succeeded", "failed")
# pg_advisory_xact_lock's key: one materialiser at a time, in every process.
MATERIALISE_LOCK = zlib.crc32(b"flowgate.dashboard.materialise")
EPOCH = "1970-01-01T00:00:00Z"


def bucket_upper_ms(bucket: int) -> float:
    """The upper bound (inclusive) of ``bucket`` in milliseconds (infinity for the last)."""
    if bucket >= LAST_BUCKET:
        return math.inf
    return 2 ** ((bucket - OFFSET) / BUCKETS_PER_DOUBLING)


def bucket_of(ms: float) -> int:
    """The bucket of a duration, as the materialiser's SQL computes it (for tests)."""
    if ms <= 2**MIN_EXPONENT:
        return 0
    return min(math.ceil(BUCKETS_PER_DOUBLING * math.log2(ms)) + OFFSET, LAST_BUCKET)


def bucket_value_ms(bucket: int) -> float:
    """What a sample in ``bucket`` is reported as: the geometric middle of its bounds."""
    if bucket <= 0:
        return bucket_upper_ms(0)
    if bucket >= LAST_BUCKET:
        return bucket_upper_ms(LAST_BUCKET - 1)
    return 2 ** ((bucket - OFFSET - 0.5) / BUCKETS_PER_DOUBLING)


def quantile_ms(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The ``fraction`` quantile (nearest rank) of a histogram {bucket: count}; None when
    it is empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(math.ceil(fraction * total), 1)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_value_ms(bucket)
    return bucket_value_ms(max(histogram))  # unreachable: seen reaches total


def cumulative(histogram: Mapping[int, int], bounds_ms: Iterable[float]) -> list[int]:
    """How many samples are at most each bound (Prometheus' cumulative buckets). Exact
    for bounds that are bucket bounds (powers of two milliseconds are)."""
    return [
        sum(count for bucket, count in histogram.items() if bucket_upper_ms(bucket) <= bound)
        for bound in bounds_ms
    ]


# The transactions of this database that may still write a stamped row: the next id to
# be given out, and every open transaction that has one (``backend_xid`` is 32 bits:
# placed in the epoch of the snapshot's 64-bit ids), the materialiser's own included: a
# pass run inside a transaction that already ended runs (a request, a task) must not move
# the mark past rows that are not committed yet, or they would never be counted. The
# snapshot is taken as the statement starts, pg_stat_activity read after it (its
# per-transaction cache cleared first, see ``materialise``), so a transaction that gets
# its id in between is above ``xmax`` and one that ends in between is committed when the
# materialising statement (a later snapshot) reads.
CUTOFF_SQL = """
    WITH snapshot AS (
        SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax
    ), open_ids AS (
        SELECT ((snapshot.xmax >> 32) << 32) + activity.backend_xid::text::bigint AS xid
          FROM pg_stat_activity AS activity, snapshot
         WHERE activity.datname = current_database()
           AND activity.backend_xid IS NOT NULL
           AND activity.pid <> pg_backend_pid()
        UNION ALL
        SELECT pg_current_xact_id_if_assigned()::text::bigint
    )
    SELECT LEAST(
        snapshot.xmax,
        (SELECT min(CASE WHEN xid > snapshot.xmax THEN xid - 4294967296 ELSE xid END)
           FROM open_ids)
    )
      FROM snapshot
"""

_BUCKET_SQL = f"""
    CASE WHEN {{ms}} IS NULL THEN NULL
         WHEN {{ms}} <= {2.0**MIN_EXPONENT} THEN 0
         ELSE LEAST(ceil({BUCKETS_PER_DOUBLING} * ln({{ms}}) / ln(2)) + {OFFSET}, {LAST_BUCKET})
    END::smallint
"""


def _number(path: str) -> str:
    """A number in the step's meta (NULL unless it is one)."""
    keys = path.split(".")
    json = "meta" + "".join(f"->'{key}'" for key in keys)
    return f"(CASE WHEN jsonb_typeof({json}) = 'number' THEN ({json})::text::float8 END)"


_RUN, _STEP = Run._meta.db_table, StepRun._meta.db_table
_AI = ", ".join(f"'{block}'" for block in AI_BLOCKS)
_STEP_ENDED = (lifecycle.STEP_SUCCEEDED, lifecycle.STEP_FAILED)  # an attempt's outcome
# Evaluation runs measure a flow version on example cases: not the workspace's work.
_NOT_COUNTED = ", ".join(f"'{trigger}'" for trigger in EVALUATION_TRIGGERS)
# Every value is a bound parameter; table and block names are our own constants.
MATERIALISE_SQL = f"""
WITH ended_runs AS MATERIALIZED (
    SELECT run.workspace_id, run.status, run.trigger,
           date_trunc('minute', COALESCE(run.finished_at, run.updated_at)) AS minute
      FROM {_RUN} AS run
     WHERE run.rollup_xid >= %(low)s AND run.rollup_xid < %(high)s
       AND {lifecycle.status_sql(*lifecycle.ENDED, column="run.status")}
       AND run.trigger NOT IN ({_NOT_COUNTED})
), ended_steps AS MATERIALIZED (
    SELECT run.workspace_id, step.block_type, step.status, step.attempt,
           step.duration_ms, step.meta,
           date_trunc('minute', COALESCE(step.finished_at, run.updated_at)) AS minute
      FROM {_STEP} AS step JOIN {_RUN} AS run ON run.id = step.run_id
     WHERE step.rollup_xid >= %(low)s AND step.rollup_xid < %(high)s
       AND {lifecycle.status_sql(*_STEP_ENDED, column="step.status")}
       AND run.trigger NOT IN ({_NOT_COUNTED})
), facts AS (
    SELECT workspace_id, minute, 'run' AS kind, status AS key, NULL::float8 AS ms,
           0 AS failed, 0 AS retry, 0::float8 AS cost, 0::float8 AS tokens
      FROM ended_runs
    UNION ALL
    SELECT workspace_id, minute, 'trigger', trigger, NULL, 0, 0, 0, 0
      FROM ended_runs
    UNION ALL
    SELECT workspace_id, minute, 'step', block_type, duration_ms,
           ({lifecycle.status_sql(lifecycle.STEP_FAILED)})::int, (attempt > 1)::int, 0, 0
      FROM ended_steps
    UNION ALL
    SELECT workspace_id, minute, 'model', COALESCE(meta->>'model', ''),
           {_number("latency_ms")}, 0, 0, COALESCE({_number("cost")}, 0), 0
      FROM ended_steps
     WHERE block_type = 'model.predict' AND {lifecycle.status_sql(lifecycle.STEP_SUCCEEDED)}
       AND {_number("latency_ms")} IS NOT NULL
    UNION ALL
    SELECT workspace_id, minute, 'ai', COALESCE(meta->>'model', ''),
           {_number("latency_ms")}, 0, 0, COALESCE({_number("cost")}, 0),
           COALESCE({_number("usage.total")}, 0)
      FROM ended_steps
     WHERE block_type IN ({_AI}) AND {lifecycle.status_sql(lifecycle.STEP_SUCCEEDED)}
       AND {_number("latency_ms")} IS NOT NULL
    UNION ALL
    SELECT workspace_id, minute, 'policy', COALESCE(meta->>'policy', ''),
           {_number("duration_ms")}, 0, 0, 0, 0
      FROM ended_steps
     WHERE block_type = 'policy.evaluate' AND {lifecycle.status_sql(lifecycle.STEP_SUCCEEDED)}
       AND (meta->>'policy_version') IS DISTINCT FROM ''
       AND {_number("duration_ms")} IS NOT NULL
), per_minute AS (
    SELECT workspace_id, minute, kind, key, {_BUCKET_SQL.format(ms="ms")} AS bucket,
           count(*) AS n, count(ms) AS timed, sum(failed) AS failed, sum(retry) AS retries,
           COALESCE(sum(ms), 0) AS total_ms, sum(cost) AS cost, sum(tokens) AS tokens
      FROM facts
     GROUP BY 1, 2, 3, 4, 5
), tiers AS (
    SELECT workspace_id, 1 AS tier, minute AS start, kind, key, bucket,
           n, timed, failed, retries, total_ms, cost, tokens
      FROM per_minute
    UNION ALL
    SELECT workspace_id, 60, date_trunc('hour', minute), kind, key, bucket,
           n, timed, failed, retries, total_ms, cost, tokens
      FROM per_minute
    UNION ALL
    SELECT workspace_id, 1440, date_trunc('day', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           kind, key, bucket, n, timed, failed, retries, total_ms, cost, tokens
      FROM per_minute
    UNION ALL
    SELECT workspace_id, 0, '{EPOCH}'::timestamptz, kind, key, bucket,
           n, timed, failed, retries, total_ms, cost, tokens
      FROM per_minute
), per_bucket AS (
    SELECT workspace_id, tier, start, kind, key, bucket, sum(n) AS n,
           sum(timed) AS timed, sum(failed) AS failed, sum(retries) AS retries,
           sum(total_ms) AS total_ms, sum(cost) AS cost, sum(tokens) AS tokens
      FROM tiers
     GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO {Rollup._meta.db_table} AS rollup
       (workspace_id, tier, start, kind, key, count, failed, retries, total_ms,
        cost, tokens, hist_buckets, hist_counts)
SELECT workspace_id, tier, start, kind, key, sum(n), sum(failed), sum(retries),
       sum(total_ms), sum(cost), sum(tokens),
       COALESCE(array_agg(bucket ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL), '{{}}'),
       COALESCE(array_agg(timed ORDER BY bucket) FILTER (WHERE bucket IS NOT NULL), '{{}}')
  FROM per_bucket
 GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT ON CONSTRAINT dashboard_rollup_key DO UPDATE
   SET count = rollup.count + excluded.count,
       failed = rollup.failed + excluded.failed,
       retries = rollup.retries + excluded.retries,
       total_ms = rollup.total_ms + excluded.total_ms,
       cost = rollup.cost + excluded.cost,
       tokens = rollup.tokens + excluded.tokens,
       (hist_buckets, hist_counts) = (
           SELECT COALESCE(array_agg(bucket ORDER BY bucket), '{{}}'),
                  COALESCE(array_agg(n ORDER BY bucket), '{{}}')
             FROM (SELECT bucket, sum(n)::bigint AS n
                     FROM unnest(rollup.hist_buckets || excluded.hist_buckets,
                                 rollup.hist_counts || excluded.hist_counts) AS u(bucket, n)
                    GROUP BY bucket) AS merged
       )
"""  # noqa: S608


def materialise(*, wait: bool = True) -> bool:
    """Add what ended since the high-water mark to the rollups and move the mark; drop
    minute rows older than ``DASHBOARD_MINUTE_ROLLUP_DAYS`` once an hour. Returns False
    without doing anything when ``wait`` is False and another materialiser is at work
    (it counts the same rows). Two statements when nothing ended since the last pass."""
    mark_table = RollupMark._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        # Derived rows need no flush at commit: a pass lost in a crash is lost with its
        # mark, and done again.
        cursor.execute(
            f"SELECT set_config('synchronous_commit', 'off', true), {lock}(%s)::text,"
            " pg_stat_clear_snapshot()",
            [MATERIALISE_LOCK],
        )
        if cursor.fetchone()[1] == "false":
            return False
        cursor.execute(
            f"SELECT mark.xid, mark.purged_at, ({CUTOFF_SQL}) FROM (SELECT 1) AS one"  # noqa: S608
            f" LEFT JOIN {mark_table} AS mark ON mark.id = 1"
        )
        low, purged_at, high = cursor.fetchone()
        now, changed = timezone.now(), False
        xid, materialised_at = low or 0, None
        if high > xid:
            cursor.execute(MATERIALISE_SQL, {"low": xid, "high": high})
            xid, materialised_at, changed = high, now, True
        if purged_at is None or now - purged_at > timedelta(hours=1):
            days = settings.FLOWGATE["DASHBOARD_MINUTE_ROLLUP_DAYS"]
            Rollup.objects.filter(
                tier=Rollup.Tier.MINUTE, start__lt=now - timedelta(days=days)
            ).delete()
            purged_at, changed = now, True
        if changed:
            cursor.execute(
                f"""INSERT INTO {mark_table} AS mark (id, xid, materialised_at, purged_at)
                    VALUES (1, %s, %s, %s)
                    ON CONFLICT (id) DO UPDATE SET xid = excluded.xid, purged_at =
                        excluded.purged_at, materialised_at =
                        COALESCE(excluded.materialised_at, mark.materialised_at)""",  # noqa: S608
                [xid, materialised_at, purged_at],
            )
    return True
