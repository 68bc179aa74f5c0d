"""A run whose decision is a policy step, for the audit trail and redaction tests."""

from __future__ import annotations

from typing import Any

from apps.policies import services as policies
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

LIMITS = (
    "package flowgate.limits\n\n"
    'default route := "review"\n\n'
    'route := "approve" if input.amount < 100\n'
)


def policy_routed_run(
    workspace, admin, *, policy_input: dict[str, str], body: dict[str, Any]
) -> Run:
    """Publish the ``limits`` policy and a flow whose ``route`` step asks it (with
    ``policy_input``, CEL per field), run it once on ``body`` and return the finished run."""
    policy = policies.policy_create(
        workspace=workspace, actor=admin, slug="limits", name="Limits", source=LIMITS
    )
    policies.policy_publish(policy=policy, actor=admin, run_tests=False)
    flow = published_flow(
        workspace,
        admin,
        definition(
            [
                node("start", "trigger.manual"),
                node(
                    "route",
                    "policy.evaluate",
                    policy="limits",
                    rule="route",
                    input=policy_input,
                    routes=["approve", "review"],
                ),
            ],
            [("start", "route")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope(body), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run
