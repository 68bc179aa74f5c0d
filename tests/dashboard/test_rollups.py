"""The dashboard's rollups: every run and step attempt that ends is counted exactly once,
however the transactions that end them interleave with the materialiser, and latency
quantiles from the summed histograms stay within the stated error."""

from __future__ import annotations

import itertools
import math
import random
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.dashboard import rollups, selectors
from apps.dashboard.models import Rollup, RollupMark
from apps.runs.blocks import envelope
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.dashboard.test_views import BROKEN, GOOD, execute
from tests.runs.helpers import published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def ended(workspace, range_name="1h") -> dict[str, int]:
    return selectors.dashboard_figures(workspace=workspace, range_name=range_name)["runs"][
        "by_status"
    ]


def test_each_end_is_counted_once_whatever_the_passes(workspace, builder_user):
    good = published_flow(workspace, builder_user, GOOD, name="Good flow")
    broken = published_flow(workspace, builder_user, BROKEN, name="Broken flow")
    execute(good)
    execute(broken)
    assert rollups.materialise()
    assert rollups.materialise()  # nothing new: nothing counted twice
    assert (ended(workspace)["succeeded"], ended(workspace)["failed"]) == (1, 1)

    execute(good)
    # A write that does not change an ended row's status is not a new end.
    StepRun.objects.update(duration_ms=5)
    Run.objects.filter(status="failed").update(error={"message": "edited"})
    rollups.materialise()
    assert (ended(workspace)["succeeded"], ended(workspace)["failed"]) == (2, 1)
    steps = selectors.step_error_rates(workspace=workspace, since=selectors.range_start("1h"))
    assert (steps["attempts"], steps["failed"]) == (6, 1)  # 3 triggers, 3 transforms
    # Each tier holds every end once (per workspace, whatever the flows).
    for tier in Rollup.Tier.values:
        rows = Rollup.objects.filter(tier=tier, kind="run", key="succeeded")
        assert sum(rows.values_list("count", flat=True)) == 2, tier


def test_a_run_ended_in_a_transaction_still_open_is_counted_after_it_commits(
    workspace, builder_user
):
    flow = published_flow(workspace, builder_user, GOOD, name="Good flow")
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    written, release = threading.Event(), threading.Event()

    def end_the_run_slowly() -> None:
        try:
            with transaction.atomic():
                Run.objects.filter(id=run.id).update(
                    status="failed", finished_at=timezone.now() - timedelta(seconds=30)
                )
                written.set()
                release.wait(30)
        finally:
            connection.close()

    worker = threading.Thread(target=end_the_run_slowly)
    worker.start()
    assert written.wait(30)
    execute(flow)  # later transactions, committed while the first is still open
    rollups.materialise()
    mark = RollupMark.objects.get().xid
    # The mark stops below the open transaction: what ended after it waits for it too.
    assert ended(workspace)["succeeded"] == 0 and ended(workspace)["failed"] == 0
    release.set()
    worker.join(30)

    rollups.materialise()
    assert RollupMark.objects.get().xid > mark
    assert ended(workspace)["succeeded"] == 1 and ended(workspace)["failed"] == 1
    rollups.materialise()
    assert ended(workspace)["failed"] == 1


def test_a_pass_inside_the_transaction_that_ended_a_run_leaves_that_run_for_later(
    workspace, builder_user
):
    # A request or task that ends runs and then reads the dashboard (which runs a pass)
    # in one transaction: its own ends are not committed yet, so the mark stays below them.
    flow = published_flow(workspace, builder_user, GOOD, name="Good flow")
    with transaction.atomic():
        execute(flow)
        rollups.materialise(wait=False)
        assert ended(workspace)["succeeded"] == 0
    rollups.materialise()
    assert ended(workspace)["succeeded"] == 1


def test_another_materialiser_at_work_is_not_waited_for(workspace):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [rollups.MATERIALISE_LOCK])
        done: list[bool] = []
        other = threading.Thread(
            target=lambda: (done.append(rollups.materialise(wait=False)), connection.close())
        )
        other.start()
        other.join(30)
    assert done == [False]


def test_the_sql_buckets_are_the_documented_ones_and_quantiles_stay_within_the_error():
    samples = [0.001, 2.0**-7, 0.5, 1.0, 1.3, 20.0, 999.9, 2.0**22, 2.0**23]
    with connection.cursor() as cursor:
        expression = rollups._BUCKET_SQL.format(ms="ms")
        cursor.execute(
            f"SELECT ms, {expression} FROM unnest(%s::float8[]) AS ms",
            [samples],
        )
        assert {ms: bucket for ms, bucket in cursor.fetchall()} == {
            ms: rollups.bucket_of(ms) for ms in samples
        }
    generator = random.Random(7)
    values = [generator.lognormvariate(3, 1.5) for _ in range(5000)]
    histogram: dict[int, int] = {}
    for value in values:
        histogram[rollups.bucket_of(value)] = histogram.get(rollups.bucket_of(value), 0) + 1
    ordered = sorted(values)
    for fraction in (0.5, 0.95, 0.99):
        truth = ordered[math.ceil(fraction * len(ordered)) - 1]
        estimate = rollups.quantile_ms(histogram, fraction)
        assert abs(estimate - truth) / truth <= rollups.QUANTILE_ERROR
    assert rollups.quantile_ms({}, 0.5) is None


def test_minute_rows_past_the_retention_go_and_hours_stay(workspace, builder_user, settings):
    flow = published_flow(workspace, builder_user, GOOD, name="Good flow")
    run = execute(flow)
    Run.objects.filter(id=run.id).update(finished_at=timezone.now() - timedelta(days=9))
    StepRun.objects.update(finished_at=timezone.now() - timedelta(days=9))
    rollups.materialise()  # counted in the minute it ended, then purged (older than 8 days)
    assert not Rollup.objects.filter(tier=Rollup.Tier.MINUTE).exists()
    assert Rollup.objects.filter(tier=Rollup.Tier.HOUR, kind="run").get().count == 1
    assert Rollup.objects.filter(tier=Rollup.Tier.DAY, kind="run").get().count == 1
    assert selectors.runs_by_status()["succeeded"] == 1  # all time
    assert ended(workspace, "7d")["succeeded"] == 0


def test_a_range_reads_whole_days_hours_and_minutes_once_each():
    from datetime import UTC, datetime

    from apps.dashboard.selectors import _window

    now = datetime(2026, 12, 6, 18, 42, 30, tzinfo=UTC)
    since = datetime(2026, 11, 29, 17, 13, 10, tzinfo=UTC)
    covered = []
    for part in _window(since, now).children:
        fields = dict(part.children)
        covered.append((fields["tier"], fields["start__gte"], fields["start__lt"]))
    covered.sort(key=lambda row: row[1])
    # Contiguous, from the first whole minute to the end of the current one.
    assert covered[0][1] == datetime(2026, 11, 29, 17, 14, tzinfo=UTC)
    assert covered[-1][2] == datetime(2026, 12, 6, 18, 43, tzinfo=UTC)
    assert all(a[2] == b[1] for a, b in itertools.pairwise(covered))
    assert [tier for tier, *_ in covered] == [1, 60, 1440, 60, 1]
    hourly = [dict(part.children)["tier"] for part in _window(since, now, finest=60).children]
    assert sorted(hourly) == [1, 1, 60]  # a series of hourly buckets reads no day rows
