"""Sub-flows cannot nest without end: cycles are refused at publish, depth is limited at
run time (issue 16, "Evaluation is bounded")."""

from __future__ import annotations

import itertools

import pytest

from apps.flows.models import FlowVersion
from apps.flows.services import FlowError, flow_create, flow_publish
from apps.runs.blocks import envelope
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.waiting import wait_for


def calling(*slugs: str, loop: str | None = None) -> dict:
    nodes = [node("start", "trigger.manual")]
    nodes += [node(f"call_{slug}", "flow.subflow", flow=slug) for slug in slugs]
    if loop:
        nodes.append(node("each", "logic.foreach", items="[1, 2]", flow=loop))
    ids = [item["id"] for item in nodes]
    return definition(nodes, list(itertools.pairwise(ids)))


def test_a_flow_calling_itself_is_refused_at_publish(workspace, builder_user):
    flow = flow_create(
        workspace=workspace, actor=builder_user, name="Loop", definition=calling("loop")
    )
    with pytest.raises(FlowError) as refused:
        flow_publish(flow=flow, actor=builder_user)
    assert "would call itself through sub-flows (loop → loop)" in refused.value.message
    assert not flow.versions.exists()


def test_a_cycle_through_other_flows_is_refused_at_publish(workspace, builder_user):
    # Each call names a published flow (pre-flight asks for that), so the loop can only be
    # closed by republishing the first flow of the chain.
    gamma = published_flow(workspace, builder_user, calling(), name="Gamma")
    published_flow(workspace, builder_user, calling(loop="gamma"), name="Beta")
    published_flow(workspace, builder_user, calling("beta"), name="Alpha")
    with pytest.raises(FlowError) as refused:
        flow_publish(flow=gamma, actor=builder_user, definition=calling("alpha"))
    assert "(gamma → alpha → beta → gamma)" in refused.value.message
    # without the cycle it publishes
    assert flow_publish(flow=gamma, actor=builder_user, definition=calling()).number == 2


@pytest.mark.django_db(transaction=True)
def test_nesting_beyond_the_depth_limit_fails_the_step_clearly(
    workspace, builder_user, settings, celery_worker
):
    limit = settings.FLOWGATE["SUBFLOW_MAX_DEPTH"]  # the worker's too: same environment
    # A cycle published before publishing refused cycles: stored as it was.
    loop = published_flow(workspace, builder_user, calling(), name="Loop")
    FlowVersion.objects.filter(flow=loop).update(definition=calling("loop"))
    run = run_start(flow=loop, trigger="manual", payload=envelope({})).run

    def stopped() -> Run | None:
        return next(
            (
                candidate
                for candidate in Run.objects.filter(flow=loop, status="failed")
                if "nest deeper" in str(candidate.error)
            ),
            None,
        )

    deepest = wait_for(stopped, timeout=90)
    chain = " → ".join(["loop"] * (limit + 1))
    assert deepest.error["message"] == (
        f"sub-flows nest deeper than the limit of {limit} runs ({chain}): a flow that calls "
        "itself, directly or through others, is stopped here"
    )
    assert Run.objects.filter(flow=loop).count() == limit  # the first run and its descendants
    assert Run.objects.filter(pk=run.pk).exists()
