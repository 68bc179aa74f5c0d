"""The engine, driven directly (no broker): paths, joins, loops, waits, retries, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runs import reconciler
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def run_flow(workspace, actor, flow_definition, body, **kwargs) -> Run:
    flow = published_flow(workspace, actor, flow_definition)
    run = run_start(
        flow=flow, trigger="manual", payload=envelope(body), enqueue=False, **kwargs
    ).run
    advance(run.id)
    run.refresh_from_db()
    return run


def step(run: Run, node_id: str) -> StepRun:
    return StepRun.objects.filter(run=run, node_id=node_id).order_by("-attempt").first()


BRANCHING = definition(
    [
        node("start", "trigger.manual"),
        node("check", "logic.branch", condition="trigger.body.amount > 100"),
        node("big", "transform.set", values={"size": "'big'"}),
        node("small", "transform.set", values={"size": "'small'"}),
        node(
            "reply",
            "flow.respond",
            body={"size": "has(steps.big) ? steps.big.output.size : steps.small.output.size"},
        ),
    ],
    [
        ("start", "check"),
        ("check", "big", "true"),
        ("check", "small", "false"),
        ("big", "reply"),
        ("small", "reply"),
    ],
)


def test_a_branch_takes_one_path_and_skips_the_other(workspace, builder_user):
    run = run_flow(workspace, builder_user, BRANCHING, {"amount": 500})
    assert run.status == "succeeded"
    assert run.response["body"] == {"size": "big"}
    assert step(run, "small").status == "skipped"
    assert step(run, "check").port == "true"


def test_parallel_paths_join_at_a_merge(workspace, builder_user):
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("a", "transform.set", values={"v": "1"}),
            node("b", "transform.set", values={"v": "2"}),
            node("join", "logic.merge"),
            node(
                "sum",
                "transform.set",
                values={"total": "steps.join.output.a.v + steps.join.output.b.v"},
            ),
        ],
        [("start", "a"), ("start", "b"), ("a", "join"), ("b", "join"), ("join", "sum")],
    )
    run = run_flow(workspace, builder_user, flow, {})
    assert run.status == "succeeded"
    assert run.output == {"total": 3}


def test_switch_routes_to_the_first_matching_case(workspace, builder_user):
    flow = definition(
        [
            node("start", "trigger.manual"),
            node(
                "route",
                "logic.switch",
                cases=[
                    {"port": "urgent", "condition": "trigger.body.priority == 'high'"},
                    {"port": "normal", "condition": "true"},
                ],
            ),
            node("u", "transform.set", values={"team": "'oncall'"}),
            node("n", "transform.set", values={"team": "'queue'"}),
        ],
        [("start", "route"), ("route", "u", "urgent"), ("route", "n", "normal")],
    )
    assert run_flow(workspace, builder_user, flow, {"priority": "high"}).output == {
        "team": "oncall"
    }


def test_foreach_maps_each_item_within_the_bound(workspace, builder_user):
    flow = definition(
        [
            node("start", "trigger.manual"),
            node(
                "lines",
                "logic.foreach",
                items="trigger.body.lines",
                map={"net": "item.amount * 2", "i": "index"},
            ),
        ],
        [("start", "lines")],
    )
    run = run_flow(workspace, builder_user, flow, {"lines": [{"amount": 1}, {"amount": 5}]})
    assert run.output == {"items": [{"net": 2, "i": 0}, {"net": 10, "i": 1}], "count": 2}
    too_many = run_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node(
                    "lines",
                    "logic.foreach",
                    items="trigger.body.lines",
                    map={"x": "item"},
                    max_items=2,
                ),
            ],
            [("start", "lines")],
        ),
        {"lines": [1, 2, 3]},
    )
    assert too_many.status == "failed"
    assert "more than the limit of 2" in too_many.error["message"]


def test_an_expression_error_fails_the_step_with_the_expression_and_reason(workspace, builder_user):
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("calc", "transform.set", values={"x": "trigger.body.missing.deep"}),
        ],
        [("start", "calc")],
    )
    run = run_flow(workspace, builder_user, flow, {})
    failed = step(run, "calc")
    assert run.status == "failed"
    assert failed.status == "failed"
    assert failed.error["details"]["expression"] == "trigger.body.missing.deep"
    assert run.error["node"] == "calc"


def test_an_error_port_is_a_fallback_path(workspace, builder_user):
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("lines", "logic.foreach", items="trigger.body.nope", map={"x": "item"}),
            node("fallback", "transform.set", values={"handled": "true"}),
        ],
        [("start", "lines"), ("lines", "fallback", "error")],
    )
    run = run_flow(workspace, builder_user, flow, {})
    assert run.status == "succeeded"
    assert run.output == {"handled": True}


def test_a_delay_parks_the_run_and_the_reconciler_resumes_it(workspace, builder_user):
    flow = definition(
        [
            node("start", "trigger.manual"),
            node("wait", "util.delay", duration="1h"),
            node("after", "transform.set", values={"done": "true"}),
        ],
        [("start", "wait"), ("wait", "after")],
    )
    run = run_flow(workspace, builder_user, flow, {})
    assert run.status == "waiting"
    assert step(run, "wait").status == "waiting"
    StepRun.objects.filter(run=run, node_id="wait").update(
        wait_deadline=timezone.now() - timedelta(seconds=1)
    )
    assert reconciler.reconcile()["expired_waits"] == 1
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.output == {"done": True}


def test_a_duplicate_idempotency_key_returns_the_first_run(workspace, builder_user):
    flow = published_flow(workspace, builder_user, BRANCHING)
    first = run_start(
        flow=flow,
        trigger="manual",
        payload=envelope({"amount": 1}),
        idempotency_key="evt-1",
        enqueue=False,
    )
    second = run_start(
        flow=flow,
        trigger="manual",
        payload=envelope({"amount": 2}),
        idempotency_key="evt-1",
        enqueue=False,
    )
    assert first.created and not second.created
    assert second.run.id == first.run.id
    assert Run.objects.filter(flow=flow).count() == 1


def test_a_completed_step_is_not_executed_again(workspace, builder_user):
    run = run_flow(workspace, builder_user, BRANCHING, {"amount": 5})
    Run.objects.filter(pk=run.pk).update(status="running")  # as if a duplicate message arrived
    outcome = advance(run.id)
    assert outcome.steps_executed == 0
    assert StepRun.objects.filter(run=run, node_id="check").count() == 1


def test_a_run_is_dead_lettered_after_too_many_deliveries_without_progress(
    workspace, builder_user, settings
):
    flow = published_flow(workspace, builder_user, BRANCHING)
    run = run_start(flow=flow, trigger="manual", payload=envelope({"amount": 1}), enqueue=False).run
    Run.objects.filter(pk=run.pk).update(deliveries=settings.FLOWGATE["MAX_DELIVERIES"])
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "dead-lettered" in run.error["message"]
