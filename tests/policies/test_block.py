"""The policy.evaluate block routes on the decision and fails closed."""

from __future__ import annotations

from apps.blocks.registry import registry
from apps.policies.blocks import PolicyEvaluateBlock, PolicyEvaluateConfig
from apps.policies.decision import Decision
from tests.blocks.fakes import FakeContext


class RecordingPolicies:
    def __init__(self, decision: Decision):
        self.decision = decision
        self.calls: list[dict] = []

    def evaluate(self, **kwargs):
        self.calls.append(kwargs)
        return self.decision


def run(decision: Decision, **config):
    policies = RecordingPolicies(decision)
    context = FakeContext(
        scope={"trigger": {"body": {"risk": 0.93}}}, services={"policies": policies}
    )
    config = PolicyEvaluateConfig(
        **{"policy": "claims", "rule": "route", "input": {"risk": "trigger.body.risk"}, **config}
    )
    return PolicyEvaluateBlock().execute(context, config, None), policies


def test_route_result_takes_the_named_port():
    result, policies = run(
        Decision(allow=True, result="reject", policy="claims", version="abc"),
        routes=["approve", "review", "reject"],
    )
    assert result.port == "reject"
    assert policies.calls[0]["input"] == {"risk": 0.93}
    assert policies.calls[0]["source"] == "flow run run-1 node node-1"
    assert result.output == {
        "allow": True,
        "result": "reject",
        "reasons": [],
        "policy": "claims",
        "version": "abc",
    }
    assert result.meta["policy_version"] == "abc"


def test_object_with_route_takes_the_named_port():
    decision = Decision(
        allow=True, result={"route": "review", "reasons": ["mid risk"]}, reasons=["mid risk"]
    )
    result, _ = run(decision, routes=["approve", "review"])
    assert result.port == "review" and result.output["reasons"] == ["mid risk"]


def test_route_not_listed_falls_back_to_allow():
    result, _ = run(Decision(allow=True, result="escalate"), routes=["approve"])
    assert result.port == "allow"


def test_boolean_deny_takes_deny():
    result, _ = run(Decision(allow=False, result=False, reasons=["too risky"]))
    assert result.port == "deny" and result.output["reasons"] == ["too risky"]


def test_policy_error_takes_deny_with_the_error():
    result, _ = run(
        Decision.deny("policy evaluation failed: boom", error="boom"), routes=["approve"]
    )
    assert result.port == "deny"
    assert result.meta["error"] == "boom"
    assert "boom" in result.output["reasons"][0]


def test_bad_input_expression_denies_without_calling_the_policy():
    result, policies = run(Decision(allow=True), input={"risk": "trigger.body.nope"})
    assert result.port == "deny" and policies.calls == []
    assert "cannot build the policy input" in result.output["reasons"][0]


def test_routes_become_ports():
    config = PolicyEvaluateConfig(policy="claims", rule="route", routes=["approve", "review"])
    assert PolicyEvaluateBlock.output_ports(config) == ("approve", "review", "allow", "deny")


def test_block_and_service_are_registered():
    assert registry.get("policy.evaluate") is PolicyEvaluateBlock
    assert registry.service_factory("policies") is not None


def test_block_against_real_published_policy(workspace, owner):
    from apps.policies.services import WorkspacePolicies, policy_defaults_ensure

    policy_defaults_ensure(workspace=workspace, actor=owner, slugs=("claims",))
    context = FakeContext(
        scope={"trigger": {"body": {"risk": 0.1, "amount": 100}}},
        services={"policies": WorkspacePolicies(workspace.id)},
    )
    config = PolicyEvaluateConfig(
        policy="claims",
        rule="route",
        routes=["approve", "review", "reject"],
        input={"risk": "trigger.body.risk", "amount": "trigger.body.amount"},
    )
    result = PolicyEvaluateBlock().execute(context, config, None)
    assert result.port == "approve" and len(result.meta["policy_version"]) == 64
