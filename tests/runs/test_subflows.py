"""Sub-flows: a caller follows the callee's latest published version or pins one; the
child run and the caller's step record which version ran."""

from __future__ import annotations

import pytest

from apps.flows.services import flow_draft_save, flow_publish
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def callee(factor: int) -> dict:
    return definition(
        [
            node("start", "trigger.manual"),
            node("calc", "transform.set", values={"y": f"trigger.body.x * {factor}"}),
        ],
        [("start", "calc")],
        name="Multiplier",
    )


def caller(**subflow: object) -> dict:
    return definition(
        [
            node("start", "trigger.manual"),
            node(
                "call", "flow.subflow", flow="multiplier", input={"x": "trigger.body.x"}, **subflow
            ),
        ],
        [("start", "call")],
        name="Caller",
    )


@pytest.fixture
def multiplier(workspace, builder_user):
    """Version 1 doubles, version 2 (the latest) triples."""
    flow = published_flow(workspace, builder_user, callee(2), name="Multiplier")
    flow.refresh_from_db()
    flow_draft_save(
        flow=flow, actor=builder_user, definition=callee(3), revision=flow.draft_revision
    )
    flow_publish(flow=flow, actor=builder_user)
    return flow


def call(workspace, actor, caller_definition: dict) -> tuple[Run, Run]:
    parent_flow = published_flow(workspace, actor, caller_definition, name="Caller")
    parent = run_start(
        flow=parent_flow, trigger="manual", payload=envelope({"x": 5}), enqueue=False
    ).run
    advance(parent.id)
    child = Run.objects.select_related("version").get(parent_run=parent)
    advance(child.id)
    advance(parent.id)
    parent.refresh_from_db()
    return parent, child


def test_a_caller_that_pins_a_version_runs_that_version(workspace, builder_user, multiplier):
    parent, child = call(workspace, builder_user, caller(version=1))
    assert child.version.number == 1
    assert (parent.status, parent.output) == ("succeeded", {"y": 10})
    step = StepRun.objects.get(run=parent, node_id="call")
    assert step.meta["subflow_version"] == 1


def test_a_caller_without_a_pin_follows_the_latest_version(workspace, builder_user, multiplier):
    parent, child = call(workspace, builder_user, caller())
    assert child.version.number == 2
    assert (parent.status, parent.output) == ("succeeded", {"y": 15})
    assert StepRun.objects.get(run=parent, node_id="call").meta["subflow_version"] == 2


def test_pinning_a_version_that_was_never_published_fails_the_step_saying_so(
    workspace, builder_user, multiplier
):
    parent_flow = published_flow(workspace, builder_user, caller(version=7), name="Caller")
    parent = run_start(
        flow=parent_flow, trigger="manual", payload=envelope({"x": 5}), enqueue=False
    ).run
    advance(parent.id)
    parent.refresh_from_db()
    assert parent.status == "failed"
    assert parent.error["message"] == "Multiplier has no published version 7"
