"""The claims-triage template end to end: the real model service scores the claim, the
shipped claims policy routes it, and the decision records model and policy versions."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.flows.gallery import template_definition
from apps.inbox.models import ReviewTask
from apps.policies.services import policy_defaults_ensure
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.runs.helpers import published_flow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RISKY = {"claim_id": "C-1", "amount": 9000, "claimant_age": 24, "days_since_policy_start": 5,
         "prior_claims": 4, "channel": "web"}  # fmt: skip
SAFE = {"claim_id": "C-2", "amount": 300, "claimant_age": 70, "days_since_policy_start": 3400,
        "prior_claims": 0, "channel": "agent"}  # fmt: skip


def triage(workspace, actor, claim):
    policy_defaults_ensure(workspace=workspace)
    flow = published_flow(workspace, actor, template_definition("claims-triage"))
    run = run_start(flow=flow, trigger="webhook", payload=envelope(claim), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


def expected_route(risk: float, amount: float) -> str:
    """The shipped claims policy, restated: reject from 0.8, approve under 0.3 up to 5000."""
    if risk >= 0.8:
        return "reject"
    return "approve" if risk < 0.3 and amount <= 5000 else "review"


@pytest.mark.parametrize("claim", [RISKY, SAFE], ids=["risky", "safe"])
def test_a_claim_is_scored_routed_and_explained(registry_settings, workspace, admin_user, claim):
    run = triage(workspace, admin_user, claim)

    score = StepRun.objects.get(run=run, node_id="score")
    risk = score.output["scores"]["fraud"]
    route = expected_route(risk, claim["amount"])
    assert StepRun.objects.get(run=run, node_id="route").port == route
    if route == "review":
        assert run.status == "waiting"
        assert ReviewTask.objects.get(run=run).data["Model version"] == score.output["version"]
    else:
        assert run.status == "succeeded"
        assert run.output["status"] == {"approve": "approved", "reject": "rejected"}[route]
    decisions = AuditEvent.objects.filter(workspace=workspace, action__startswith="decision")
    recorded = {event.data.get("node"): event.data for event in decisions}
    assert recorded["score"]["meta"]["model_version"] == score.output["version"]
    assert recorded["route"]["meta"]["policy_version"]


def test_the_risky_and_the_safe_claim_take_different_paths(
    registry_settings, workspace, admin_user
):
    routes = {
        StepRun.objects.get(run=triage(workspace, admin_user, claim), node_id="route").port
        for claim in (RISKY, SAFE)
    }
    assert len(routes) == 2
