"""A policy never takes the evaluating process down (issue 16, "Evaluation is bounded")."""

from __future__ import annotations

import pytest

from apps.core.tasks import ping
from apps.policies.engine import PolicySource, evaluate, source_digest
from apps.policies.models import Policy, PolicyVersion
from apps.policies.services import (
    PolicyValidationError,
    policy_create,
    policy_publish,
    policy_test_case_save,
)
from apps.runs.blocks import envelope
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.waiting import wait_for

# Counts down one call per unit: fine for the small numbers of its tests, a native stack
# overflow (segfault) in regorus for n = 100000.
RECURSIVE = """package recursive
import rego.v1

depth(n) := d if {
    n > 0
    d := depth(n - 1) + 1
}

depth(n) := 0 if n <= 0

allow if depth(input.n) > 0
"""
MUTUAL = """package mutual
import rego.v1

odd(n) := true if { n > 0; data.mutual.even(n - 1) }
even(n) := true if n == 0
even(n) := true if { n > 0; odd(n - 1) }

allow if odd(input.n)
"""


@pytest.mark.parametrize(
    ("source", "cycle"), [(RECURSIVE, "depth → depth"), (MUTUAL, "odd → even → odd")]
)
def test_a_recursive_policy_whose_tests_pass_is_refused_at_publish(
    workspace, admin_user, source, cycle
):
    policy = policy_create(
        workspace=workspace, actor=admin_user, slug="loops", name="Loops", source=source
    )
    policy_test_case_save(
        policy=policy, actor=admin_user, name="small", rule="allow", input={"n": 3}, expected=True
    )
    with pytest.raises(PolicyValidationError) as refused:
        policy_publish(policy=policy, actor=admin_user)
    assert [str(error) for error in refused.value.errors] == [
        f"4:1: recursion is not allowed: {cycle}: rules and functions may not call themselves"
    ]
    assert not policy.versions.exists()


@pytest.mark.django_db(transaction=True)
def test_a_recursive_version_already_live_is_denied_with_a_reason_and_the_worker_lives(
    workspace, admin_user, builder_user, celery_worker
):
    # Published before publishing refused recursion: stored as it was.
    policy = Policy.objects.create(
        workspace=workspace, slug="loops", name="Loops", package="recursive", draft_source=RECURSIVE
    )
    PolicyVersion.objects.create(
        policy=policy, number=1, source=RECURSIVE, package="recursive",
        sha256=source_digest(RECURSIVE), rules=["allow"], published_by=admin_user,
    )  # fmt: skip
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node(
                    "gate",
                    "policy.evaluate",
                    policy="loops",
                    rule="allow",
                    input={"n": "trigger.body.n"},
                ),
            ],
            [("start", "gate")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 100_000})).run
    wait_for(lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=60)

    step = StepRun.objects.get(run=run, node_id="gate")
    assert step.port == "deny"
    assert "recursion is not allowed: depth → depth" in step.meta["error"]
    assert ping.delay("still here").get(timeout=30) == "pong:still here"


def test_an_input_nested_deeper_than_the_engine_can_walk_is_denied():
    policy = PolicySource.from_text(slug="p", source="package p\nimport rego.v1\nallow := true\n")
    nested: object = 1
    for _ in range(100_000):  # 200 KB of JSON, under the input size limit
        nested = [nested]
    decision = evaluate(policy, "allow", {"a": nested})
    assert decision.allow is False
    assert decision.error == "the policy input cannot be written as JSON or nests over 255 levels"
