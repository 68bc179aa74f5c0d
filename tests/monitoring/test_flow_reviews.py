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
from tests.runs.helpers import definition, node, published_flow

from .conftest import FIELDS, MONITORED, stream

pytestmark = [pytest.mark.slow]


def scoring_flow() -> dict:
    return definition(
        [
            node("start", "trigger.manual"),
            node(
                "score",
                "model.predict",
                model=MONITORED,
                inputs={name: f"trigger.body.{name}" for name in FIELDS},
                threshold=0.9,
                business_key="trigger.body.claim_number",
            ),
            node("review", "human.approval", title="Check the claim"),
            node("done", "transform.set", values={"automated": "true"}),
        ],
        [("start", "score"), ("score", "done", "out"), ("score", "review", "low_confidence")],
        name="Claim scoring",
    )


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
    records, _ = stream(12, seed=9)
    for number, record in enumerate(records):
        run = run_start(
            flow=flow,
            trigger="manual",
            payload=envelope({**record, "claim_number": f"C-{number}"}),
            actor=builder_user,
            enqueue=False,
        ).run
        advance(run.id)
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
