"""The dashboard's figures, from the rollups of real runs and steps."""

from __future__ import annotations

import math

import pytest
from django.utils import timezone

from apps.dashboard import rollups, selectors, services
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.dashboard.test_views import BROKEN, GOOD, execute
from tests.runs.helpers import definition, node, published_flow
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)

POLICY = definition(
    [
        node("start", "trigger.manual"),
        node(
            "decide",
            "policy.evaluate",
            policy="claims",
            rule="route",
            routes=["approve", "review", "reject"],
            input={"risk": "trigger.body.risk", "amount": "trigger.body.amount"},
        ),
    ],
    [("start", "decide")],
)
PREDICT = definition(
    [
        node("start", "trigger.manual"),
        node("score", "model.predict", model="claim-fraud", inputs={"amount": "1"}),
    ],
    [("start", "score")],
)


def nearest_rank(values: list[float], fraction: float) -> float:
    """The sample at the nearest rank: what a rollup quantile approximates."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def since_an_hour_ago():
    return selectors.range_start("1h")


def test_policy_latency_is_the_engine_time_of_real_policy_steps(
    workspace, builder_user, admin_user
):
    from apps.policies.services import policy_defaults_ensure

    policy_defaults_ensure(workspace=workspace, actor=admin_user, slugs=("claims",))
    flow = published_flow(workspace, builder_user, POLICY, name="Policy flow")
    for amount in (100, 5000, 90000, 250):
        execute(flow, {"risk": 0.2, "amount": amount})

    rollups.materialise()
    figures = selectors.policy_evaluation_figures(workspace=workspace, since=since_an_hour_ago())

    recorded = [
        step.meta["duration_ms"] for step in StepRun.objects.filter(block_type="policy.evaluate")
    ]
    assert figures["calls"] == 4 and [row["name"] for row in figures["rows"]] == ["claims"]
    # Within the histogram's stated error of the samples at those ranks.
    error = rollups.QUANTILE_ERROR
    assert figures["p50_ms"] == pytest.approx(nearest_rank(recorded, 0.5), rel=error)
    assert figures["p95_ms"] == pytest.approx(nearest_rank(recorded, 0.95), rel=error)
    assert figures["p95_ms"] > 0


def test_error_and_retry_rates_count_failed_and_retried_attempts(workspace, builder_user, settings):
    # The model service is down: its step is retried, a retryable error.
    settings.FLOWGATE = {
        **settings.FLOWGATE,
        "MODEL_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
    }
    good = published_flow(workspace, builder_user, GOOD, name="Good flow")
    broken = published_flow(workspace, builder_user, BROKEN, name="Broken flow")
    predict = published_flow(workspace, builder_user, PREDICT, name="Predict flow")
    execute(good)
    execute(broken)
    run = execute(predict)  # attempt 1 fails; attempt 2 is scheduled
    StepRun.objects.filter(status="retry_scheduled").update(next_attempt_at=timezone.now())
    advance(run.id)  # attempt 2 runs (and fails: the service is still down)

    rollups.materialise()
    figures = selectors.step_error_rates(workspace=workspace, since=since_an_hour_ago())

    # 3 triggers + 2 transforms + 2 prediction attempts ran: 3 failed, 1 was a retry.
    assert (figures["attempts"], figures["failed"], figures["retries"]) == (7, 3, 1)
    assert figures["error_rate"] == pytest.approx(3 / 7)
    assert figures["retry_rate"] == pytest.approx(1 / 7)
    empty = selectors.step_error_rates(workspace=workspace, since=timezone.now())
    assert empty["error_rate"] is None and empty["retry_rate"] is None


def test_runs_over_time_has_every_bucket_of_the_range_by_status(workspace, builder_user):
    good = published_flow(workspace, builder_user, GOOD, name="Good flow")
    broken = published_flow(workspace, builder_user, BROKEN, name="Broken flow")
    execute(good)
    execute(good)
    execute(broken)

    rollups.materialise()
    series = selectors.runs_over_time(workspace=workspace, since=since_an_hour_ago(), minutes=5)

    assert len(series) in (12, 13)  # one bucket per 5 minutes of the hour
    assert [bucket["start"] for bucket in series] == sorted(b["start"] for b in series)
    assert sum(bucket["succeeded"] for bucket in series) == 2
    assert sum(bucket["failed"] for bucket in series) == 1
    assert series[-1]["succeeded"] + series[-2]["succeeded"] == 2  # in the latest buckets


def test_queue_depth_counts_queued_runs_that_are_due(workspace, builder_user):
    flow = published_flow(workspace, builder_user, GOOD, name="Good flow")
    for _ in range(2):
        run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False)
    execute(flow)  # finished: not in the queue
    assert selectors.queue_depth(workspace=workspace) == 2
    assert selectors.dashboard_figures(workspace=workspace, range_name="1h")["queue"]["depth"] == 2


def test_slo_states_follow_the_workspace_targets(workspace, builder_user, admin_user):
    good = published_flow(workspace, builder_user, GOOD, name="Good flow")
    broken = published_flow(workspace, builder_user, BROKEN, name="Broken flow")
    for _ in range(3):
        execute(good)
    execute(broken)
    StepRun.objects.filter(block_type="transform.set").update(duration_ms=40)

    def states() -> dict[str, tuple]:
        rollups.materialise()
        figures = selectors.dashboard_figures(workspace=workspace, range_name="1h")
        return {
            slo["key"]: (slo["state"], slo["measured"], slo["target"]) for slo in figures["slo"]
        }

    default = states()
    assert default["run_success_percent"] == ("breached", 75.0, 95.0)  # 3 of 4 succeeded
    assert default["step_p95_ms"][0] == "met"  # milliseconds against 2,000 ms
    assert default["model_p95_ms"] == ("no_data", None, 500.0)  # no model was called
    assert default["inbox_oldest_hours"] == ("met", 0.0, 24.0)

    targets = {
        "run_success_percent": 70.0,
        "step_p95_ms": 1,
        "model_p95_ms": 500,
        "policy_p95_ms": 50,
        "inbox_oldest_hours": 24.0,
    }
    services.slo_targets_save(workspace=workspace, actor=admin_user, targets=targets)
    changed = states()
    assert changed["run_success_percent"] == ("met", 75.0, 70.0)
    assert changed["step_p95_ms"][:1] == ("breached",) and changed["step_p95_ms"][2] == 1.0
    assert changed["step_p95_ms"][1] == pytest.approx(40.0, rel=rollups.QUANTILE_ERROR)
