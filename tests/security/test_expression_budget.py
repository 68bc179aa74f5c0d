"""Expressions run under a time and memory budget (issue 16, "Evaluation is bounded")."""

from __future__ import annotations

import pytest

from apps.blocks.expressions import ExpressionError, evaluate, render
from apps.runs.blocks import envelope
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.security.runaway import GREEDY_EXPRESSION, RUNAWAY_EXPRESSION
from tests.support.waiting import wait_for


def test_a_runaway_expression_ends_with_an_error_naming_the_time_budget(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "EXPRESSION_TIMEOUT_MS": 500}
    with pytest.raises(ExpressionError) as raised:
        evaluate(RUNAWAY_EXPRESSION, {})
    assert raised.value.reason == "ran longer than the 0.5 s evaluation budget"


def test_an_expression_building_a_huge_string_ends_with_the_memory_budget(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "EXPRESSION_MAX_MEMORY_MB": 64}
    with pytest.raises(ExpressionError) as raised:
        render("size: {{ " + GREEDY_EXPRESSION + " }}", {})
    assert raised.value.reason == "used more than the 64 MiB evaluation memory budget"


def test_a_result_too_large_to_hand_back_is_an_error():
    thirteen_megabytes = '["' + "x" * 50 + '"]' + ".map(s, s + s + s + s)" * 9
    with pytest.raises(ExpressionError) as raised:
        evaluate(thirteen_megabytes, {})
    assert raised.value.reason == "its result is larger than the 8 MiB limit"
    assert evaluate(thirteen_megabytes + "[0].size()", {}) == 50 * 4**9


def test_comprehensions_still_evaluate_with_their_data_and_errors_after_a_runaway(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "EXPRESSION_TIMEOUT_MS": 300}
    scope = {"trigger": {"body": {"items": [{"amount": 5}, {"amount": 50}]}}}
    with pytest.raises(ExpressionError):
        evaluate(RUNAWAY_EXPRESSION, {})
    # the evaluator that was killed is replaced; nothing of the runaway is left behind
    big = "trigger.body.items.filter(i, i.amount > 10).map(i, i.amount)"
    assert evaluate(big, scope) == [50]
    assert evaluate("trigger.body.items.all(i, i.amount > 1)", scope) is True
    with pytest.raises(ExpressionError) as raised:
        evaluate("trigger.body.missing.map(i, i)", scope)
    assert raised.value.reason.startswith("no field 'missing': test it with has(...)")


@pytest.mark.django_db(transaction=True)
def test_in_a_worker_the_step_fails_with_the_budget_error(workspace, builder_user, celery_worker):
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("calc", "transform.set", values={"n": RUNAWAY_EXPRESSION}),
            ],
            [("start", "calc")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({})).run
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "failed", timeout=60)
    run.refresh_from_db()
    assert "evaluation budget" in str(run.error)


def test_the_expressions_of_a_template_share_one_budget(settings, monkeypatch):
    """Many expressions each just under the budget must not add up: a template (or a tree
    of expressions, or a for-each's items) has one budget for all its expressions."""
    from apps.blocks import expression_sandbox

    settings.FLOWGATE = {**settings.FLOWGATE, "EXPRESSION_TIMEOUT_MS": 1000}
    # This thread's evaluator is running (starting one is no expression's time, below).
    assert render("{{ [0].map(x, x) }}", {}) == "[0]"
    ticks = iter(range(100))
    monkeypatch.setattr(expression_sandbox, "clock", lambda: next(ticks) * 0.6)  # 0.6 s a look
    template = "{{ [1].map(x, x) }} and {{ [2].map(x, x) }}"
    with pytest.raises(ExpressionError) as raised:
        render(template, {})
    assert raised.value.expression == "[2].map(x, x)"
    assert raised.value.reason == "ran longer than the 1 s evaluation budget"
    # each on its own fits the budget
    assert render("{{ [1].map(x, x) }}", {}) == "[1]"


def test_starting_the_evaluator_spends_none_of_a_templates_budget(settings, monkeypatch):
    """On a busy machine starting the evaluator (an interpreter and the CEL library) can
    take longer than the whole budget: the template's expressions still get theirs."""
    from apps.blocks import expression_sandbox

    settings.FLOWGATE = {**settings.FLOWGATE, "EXPRESSION_TIMEOUT_MS": 1000}
    now = [0.0]
    monkeypatch.setattr(expression_sandbox, "clock", lambda: now[0])

    class SlowToStart(expression_sandbox._Evaluator):
        def __init__(self, memory: int) -> None:
            super().__init__(memory)
            now[0] += 5.0  # five seconds to start

    monkeypatch.setattr(expression_sandbox, "_Evaluator", SlowToStart)
    running = getattr(expression_sandbox._local, "evaluator", None)
    if running is not None:
        running.close()  # so that the first macro below starts one
    template = "{{ [1].map(x, x) }} and {{ [2].map(x, x) }}"
    assert render(template, {}) == "[1] and [2]"
