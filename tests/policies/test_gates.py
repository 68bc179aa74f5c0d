"""Gates evaluate the workspace's published Rego gate policies; deny by default; audited."""

from __future__ import annotations

from apps.audit.models import AuditEvent
from apps.policies import services
from apps.policies.defaults import shipped
from apps.policies.gates import FLOW_PUBLISH, MODEL_PROMOTION, evaluate_gate
from apps.policies.models import PolicyEvaluation
from apps.policies.selectors import policy_get

GOOD_PROMOTION = shipped("model_promotion").tests[0].input


def test_model_promotion_denied_with_every_reason(workspace):
    decision = evaluate_gate(
        workspace_id=workspace.id,
        gate=MODEL_PROMOTION,
        input={**GOOD_PROMOTION, "metrics": {"auc": 0.8, "recall": 0.9}, "approved_by": "builder"},
    )
    assert decision.allow is False
    assert decision.reasons == [
        "metric auc = 0.8 is below 0.85",
        "the requester cannot approve their own promotion",
    ]
    assert decision.policy == "model_promotion" and len(decision.version) == 64


def test_model_promotion_allowed_when_checks_pass_and_audited(workspace):
    decision = evaluate_gate(workspace_id=workspace.id, gate=MODEL_PROMOTION, input=GOOD_PROMOTION)
    assert decision.allow is True
    event = AuditEvent.objects.get(workspace_id=workspace.id, action="gate.evaluated")
    assert event.data["allow"] is True and event.data["gate"] == MODEL_PROMOTION
    assert PolicyEvaluation.objects.get(workspace=workspace).source == "gate model_promotion"


def test_flow_publish_needs_an_admin_for_unknown_hosts_and_pii(workspace):
    definition = shipped("flow_publish").tests[1].input["definition"]
    denied = evaluate_gate(
        workspace_id=workspace.id,
        gate=FLOW_PUBLISH,
        input={"definition": definition, "actor": "bea", "actor_role": "builder"},
    )
    assert denied.allow is False
    assert "an admin must publish this flow" in denied.reasons
    allowed = evaluate_gate(
        workspace_id=workspace.id,
        gate=FLOW_PUBLISH,
        input={"definition": definition, "actor": "ada", "actor_role": "admin"},
    )
    assert allowed.allow is True


def test_an_edited_gate_policy_decides(workspace, owner):
    evaluate_gate(workspace_id=workspace.id, gate=FLOW_PUBLISH, input={})
    policy = policy_get(workspace=workspace, slug="flow_publish")
    services.policy_draft_save(
        policy=policy,
        actor=owner,
        source="package flowgate.gates.flow_publish\n\n"
        'decision := {"allow": false, "reasons": ["frozen"]}\n',
    )
    policy.test_cases.all().delete()
    services.policy_publish(policy=policy, actor=owner, note="freeze publishing")
    decision = evaluate_gate(
        workspace_id=workspace.id, gate=FLOW_PUBLISH, input={"definition": {"nodes": []}}
    )
    assert (decision.allow, decision.reasons) == (False, ["frozen"])


def test_unknown_gate_denies(workspace):
    assert evaluate_gate(workspace_id=workspace.id, gate="deploy_anything", input={}).allow is False
