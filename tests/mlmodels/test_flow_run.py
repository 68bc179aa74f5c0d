"""model.predict in a real flow run on a real worker: the audit records the model version."""

from __future__ import annotations

import time

import pytest

from apps.audit.models import AuditEvent
from apps.mlmodels.training import CLAIM_FRAUD
from apps.runs.blocks import envelope
from apps.runs.models import TERMINAL_RUN_STATUSES, Run, StepRun
from apps.runs.services import run_start
from tests.mlmodels.helpers import CLAIM, INPUTS
from tests.runs.helpers import definition, node, published_flow

pytestmark = [pytest.mark.slow]


def wait_for_run(run: Run, seconds: float = 90) -> Run:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in TERMINAL_RUN_STATUSES:
            return run
        time.sleep(0.2)
    pytest.fail(f"run still {run.status} after {seconds}s")


def run_draft_reply(workspace, user, model: str, *, max_tokens: int) -> tuple[Run, StepRun]:
    """Publish a flow whose ``draft`` step is ai.generate with ``model``, run it on the
    worker (already started) and return the succeeded run and step."""
    flow = published_flow(
        workspace,
        user,
        definition(
            [
                node("start", "trigger.manual"),
                node(
                    "draft",
                    "ai.generate",
                    model=model,
                    prompt="{{ trigger.body.issue }}",
                    max_tokens=max_tokens,
                ),
            ],
            [("start", "draft")],
        ),
        name=f"Draft reply ({model})",
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({"issue": "site down"})).run
    run = wait_for_run(run)
    assert run.status == "succeeded", run.error
    return run, StepRun.objects.get(run=run, node_id="draft", status="succeeded")


def test_a_flow_run_predicts_through_the_service_and_audits_the_model_version(
    transactional_db, workspace, builder_user, model_stack, trained_models, start_worker
):
    start_worker(environment={"MODEL_SERVICE_URL": model_stack.service.url})
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node(
                    "score",
                    "model.predict",
                    model=CLAIM_FRAUD,
                    version="2",
                    inputs=INPUTS,
                    threshold=0.5,
                ),
                node(
                    "strict",
                    "model.predict",
                    model=CLAIM_FRAUD,
                    version="2",
                    inputs=INPUTS,
                    threshold=1.0,
                ),
            ],
            [("start", "score"), ("score", "strict", "out")],
        ),
        name="Claim scoring",
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope(CLAIM)).run
    run = wait_for_run(run)
    assert run.status == "succeeded", run.error

    score = StepRun.objects.get(run=run, node_id="score", status="succeeded")
    assert score.port == "out"
    assert score.output["label"] == "fraud"
    assert score.output["model"] == CLAIM_FRAUD and score.output["version"] == "2"
    assert StepRun.objects.get(run=run, node_id="strict", status="succeeded").port == (
        "low_confidence"
    )

    decisions = AuditEvent.objects.filter(action="decision.model", object_id=str(run.id))
    assert decisions.count() == 2
    for decision in decisions:
        assert decision.data["meta"]["model"] == CLAIM_FRAUD
        assert decision.data["meta"]["model_version"] == "2"
        assert decision.data["result"]["version"] == "2"


def test_predictions_record_the_configured_cost_and_feed_the_dashboard(
    transactional_db, workspace, builder_user, model_stack, trained_models, start_worker
):
    from apps.dashboard import rollups, selectors

    start_worker(
        environment={
            "MODEL_SERVICE_URL": model_stack.service.url,
            "MODEL_COSTS": f"{CLAIM_FRAUD}=0.0004,other-model=9",
            "MODEL_COST_PER_CALL": "0.5",
        }
    )
    score = node(
        "score",
        "model.predict",
        model=CLAIM_FRAUD,
        version="2",
        inputs={name: f"trigger.body.{name}" for name in CLAIM},
    )
    flow = published_flow(
        workspace,
        builder_user,
        definition([node("start", "trigger.manual"), score], [("start", "score")]),
        name="Claim scoring",
    )
    for _ in range(3):
        run = run_start(flow=flow, trigger="manual", payload=envelope(CLAIM)).run
        assert wait_for_run(run).status == "succeeded", run.error

    steps = StepRun.objects.filter(block_type="model.predict", status="succeeded")
    assert [step.meta["cost"] for step in steps] == [0.0004] * 3  # the model's own price
    rollups.materialise()
    figures = selectors.dashboard_figures(workspace=workspace, range_name="1h")
    models = figures["models"]
    assert models["calls"] == 3 and [row["name"] for row in models["rows"]] == [CLAIM_FRAUD]
    assert figures["cost"]["per_1000_inferences"] == pytest.approx(0.4)
    latencies = sorted(step.meta["latency_ms"] for step in steps)
    # The median of three calls, within the rollup histogram's error.
    assert models["p50_ms"] == pytest.approx(latencies[1], rel=rollups.QUANTILE_ERROR)
    model_slo = next(slo for slo in figures["slo"] if slo["key"] == "model_p95_ms")
    assert model_slo["measured"] == pytest.approx(models["p95_ms"], abs=0.001)
    assert model_slo["state"] in ("met", "breached")


def test_a_flow_run_generates_text_on_a_worker_and_the_step_records_model_and_tokens(
    transactional_db, workspace, builder_user, model_stack, language_models, start_worker
):
    from apps.mlmodels.training import SUPPORT_WRITER

    start_worker(environment={"MODEL_SERVICE_URL": model_stack.service.url})
    run, draft = run_draft_reply(workspace, builder_user, SUPPORT_WRITER, max_tokens=30)
    assert 0 < len(draft.output["text"]) <= 30
    assert draft.meta["model"] == SUPPORT_WRITER and draft.meta["model_version"] == "1"
    assert draft.meta["prompt"] == "site down"
    assert draft.meta["usage"]["completion"] == len(draft.output["text"])
    [decision] = AuditEvent.objects.filter(action="decision.model", object_id=str(run.id))
    assert decision.data["node"] == "draft" and decision.data["block"] == "ai.generate"
    assert decision.data["meta"]["model_version"] == "1"
    # Shown in full: token counts are not mistaken for secrets.
    assert decision.data["meta"]["usage"] == draft.meta["usage"]
