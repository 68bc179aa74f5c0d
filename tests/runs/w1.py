"""W1, the decision flow of the speed targets (issue 23): webhook → transform → model →
policy → branch → respond. ``stub_model=True`` scores with a transform instead of the
model service (what "W1 with the model stubbed" means in the benchmarks)."""

from __future__ import annotations

from typing import Any

from apps.policies import services as policies
from tests.runs.helpers import definition, node, published_flow

LIMITS = (
    "package flowgate.w1\n\n"
    "default allow := false\n\n"
    "allow if {\n    input.risk < 0.5\n    input.amount < 10000\n}\n"
)


def w1_definition(
    *, model: dict[str, Any] | None = None, risk: str = "steps.score.output.risk"
) -> dict[str, Any]:
    scorer = model or node(
        "score", "transform.set", values={"risk": "steps.prepare.output.amount > 1000 ? 0.9 : 0.1"}
    )
    return definition(
        [
            node("hook", "trigger.webhook", mode="sync"),
            node(
                "prepare",
                "transform.set",
                values={"amount": "trigger.body.amount", "customer": "trigger.body.customer"},
            ),
            scorer,
            node(
                "decide",
                "policy.evaluate",
                policy="w1-limits",
                rule="allow",
                input={"risk": risk, "amount": "steps.prepare.output.amount"},
            ),
            node("route", "logic.branch", condition="steps.decide.output.allow"),
            node("approve", "flow.respond", body={"decision": "'approve'"}),
            node("reject", "flow.respond", body={"decision": "'reject'"}),
        ],
        [
            ("hook", "prepare"),
            ("prepare", "score"),
            ("score", "decide"),
            ("decide", "route", "allow"),
            ("decide", "route", "deny"),
            ("route", "approve", "true"),
            ("route", "reject", "false"),
        ],
        name="W1",
    )


def w1_model_node(model: str, version: str, inputs: dict[str, str]) -> dict[str, Any]:
    """The real model step: ``model.predict`` on the model service."""
    return node("score", "model.predict", model=model, version=version, inputs=inputs)


def w1_flow(
    workspace: Any,
    actor: Any,
    *,
    model: dict[str, Any] | None = None,
    risk: str = "steps.score.output.risk",
    name: str = "W1",
):
    """Publish the W1 policy (once per workspace) and a W1 flow; returns the flow."""
    if not policies.Policy.objects.filter(workspace=workspace, slug="w1-limits").exists():
        policy = policies.policy_create(
            workspace=workspace, actor=actor, slug="w1-limits", name="W1 limits", source=LIMITS
        )
        policies.policy_publish(policy=policy, actor=actor, run_tests=False)
    return published_flow(workspace, actor, w1_definition(model=model, risk=risk), name=name)
