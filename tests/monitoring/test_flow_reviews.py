"""Through the real engine and model service: a flow scores claims with ``model.predict``
(sampled by monitoring with the run and step id), sends low-confidence ones to a reviewer,
and the reviewers' decisions become labels; the dashboard figures per flow follow."""

from __future__ import annotations

import pytest

from apps.inbox.models import ReviewTask
from apps.inbox.services import task_decide
from apps.monitoring.models import PredictionSample
from apps.monitoring.reviews import flow_automation, review_labels_collect
from apps.monitoring.services import monitor_save
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.inbox.helpers import membership
from tests.mlmodels.helpers import mlflow_client
from tests.runs.helpers import published_flow

from .conftest import MONITORED, scoring_flow, start_claims, stream

pytestmark = [pytest.mark.slow]


@pytest.fixture
def production_v1(db, model_stack, registry_settings, monitored_versions):
    mlflow_client(model_stack).set_registered_model_alias(
        MONITORED, "production", monitored_versions[0].version
    )


def test_reviewer_decisions_count_as_labels_and_rates_per_flow(
    production_v1, workspace, builder_user, reviewer_user, admin_user
):
    monitor_save(
        workspace=workspace,
        actor=admin_user,
        model_name=MONITORED,
        review_labels={"approve": "legit", "reject": "fraud"},
    )
    flow = published_flow(workspace, builder_user, scoring_flow(), name="Claim scoring")
    start_claims(flow, stream(12, seed=9)[0], prefix="C", actor=builder_user)
    samples = PredictionSample.objects.filter(workspace=workspace, model_name=MONITORED)
    assert samples.count() == 12 and set(samples.values_list("node_id", flat=True)) == {"score"}
    tasks = list(ReviewTask.objects.filter(workspace=workspace).order_by("created_at"))
    assert 0 < len(tasks) < 12, "the threshold should send some claims, not all, to review"

    reviewer = membership(reviewer_user, workspace)
    for task in tasks:  # the reviewer calls every reviewed claim fraud
        task_decide(
            task=task,
            actor=reviewer_user,
            membership=reviewer,
            decision="reject",
            comment="looks staged",
        )
    assert review_labels_collect(workspace_id=workspace.id) == len(tasks)
    reviewed = samples.filter(label_source="review")
    assert set(reviewed.values_list("actual", flat=True)) == {"fraud"}
    overridden = reviewed.exclude(label="fraud").count()

    [row] = flow_automation(workspace_id=workspace.id)
    assert row["flow"] == "Claim scoring" and row["runs"] == 12
    assert row["automation_rate"] == round(1 - len(tasks) / 12, 4)
    assert row["reviewed_labels"] == len(tasks)
    assert row["override_rate"] == round(overridden / len(tasks), 4)


# Committed runs, as in production: the rollups count what ended in committed transactions.
@pytest.mark.django_db(transaction=True)
def test_a_breached_slo_is_alerted_once_and_recovers(
    production_v1, workspace, builder_user, admin_user
):
    from apps.dashboard.services import slo_targets_save
    from apps.dashboard.slo import OBJECTIVES
    from apps.monitoring.checks import slo_check
    from apps.monitoring.models import MonitoringAlert

    flow = published_flow(workspace, builder_user, scoring_flow(), name="Claim scoring")
    records, _ = stream(3, seed=9)
    for record in records:
        run = run_start(
            flow=flow, trigger="manual", payload=envelope(record), actor=builder_user, enqueue=False
        ).run
        advance(run.id)
    targets = {objective.key: 10_000.0 for objective in OBJECTIVES}
    targets["run_success_percent"] = 0.0
    strict = {**targets, "model_p95_ms": 0.001}  # no model answers in a microsecond
    slo_targets_save(workspace=workspace, actor=admin_user, targets=strict)
    assert slo_check(workspace_id=workspace.id) == ["model_p95_ms"]
    assert slo_check(workspace_id=workspace.id) == ["model_p95_ms"]
    [alert] = MonitoringAlert.objects.filter(workspace=workspace, kind="slo_breach")
    assert alert.state == "open" and "Model p95 latency" in alert.summary

    slo_targets_save(workspace=workspace, actor=admin_user, targets=targets)
    assert slo_check(workspace_id=workspace.id) == []
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_labels_posted_with_an_api_token_are_webhook_labels(
    production_v1, workspace, builder_user, client
):
    from apps.accounts.services import api_token_create

    flow = published_flow(workspace, builder_user, scoring_flow(), name="Claim scoring")
    records, labels = stream(2, seed=9)
    run = run_start(
        flow=flow,
        trigger="manual",
        payload=envelope({**records[0], "claim_number": "CL-1"}),
        actor=builder_user,
        enqueue=False,
    ).run
    advance(run.id)
    secret = api_token_create(user=builder_user, workspace=workspace, name="labels").secret
    answer = client.post(
        f"/api/w/{workspace.slug}/monitoring/labels/",
        {"business_key": "CL-1", "label": labels[0]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert answer.status_code == 201 and answer.json() == {"labelled": 1}
    sample = PredictionSample.objects.get(workspace=workspace, run_id=run.id)
    assert sample.actual == labels[0] and sample.label_source == "webhook"
