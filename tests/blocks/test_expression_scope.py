"""An expression sees the whole run scope, however it names what it reads (each evaluation
is given only the fields it selects: the CEL library converts every value it is given; and
a plain field selection is read without CEL)."""

from __future__ import annotations

import cel
import pytest

from apps.blocks.expressions import ExpressionError, evaluate

SCOPE = {
    "trigger": {"body": {"amount": 1200, "pick": "score"}},
    "steps": {
        "prepare": {"output": {"amount": 1200}, "port": None},
        "score": {"output": {"risk": 0.9}, "port": None},
        "call": {
            "output": {
                "status": 200,
                "headers": {"content-type": "application/json"},
                "body": {"score": 3, "items": [{"a": 1}, {"a": 2}], "big": 2**70 + 1, "none": None},
            },
            "port": None,
        },
    },
    "vars": {},
    "sum": 7,  # a variable named like a helper wins over the helper
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("steps.prepare.output.amount > 1000 ? 0.9 : 0.1", 0.9),
        ("steps . score . output.risk", 0.9),
        ("steps[trigger.body.pick].output.risk", 0.9),  # a step chosen by the data
        ("size(steps)", 3),
        ("has(steps.decide) ? 'decided' : 'open'", "open"),
        ("'steps.score' + string(steps.prepare.output.amount)", "steps.score1200"),
        ("sum + 1", 8),
        ("[1, 2].map(steps, steps * 2)", [2, 4]),  # a macro's own variable
    ],
)
def test_an_expression_reads_any_part_of_the_scope(expression, expected):
    assert evaluate(expression, SCOPE) == expected


def test_a_step_not_in_the_scope_is_a_missing_field():
    with pytest.raises(ExpressionError, match="no field 'decide'"):
        evaluate("steps.decide.output.allow", SCOPE)


@pytest.mark.parametrize(
    "expression",
    [
        "steps.call.output.body.score",  # read without CEL
        "steps.call.output.body.none",
        "steps . call . output . status",
        "steps.call.output.body.big",  # past CEL's integers: CEL's answer (a double)
        "steps.call.output.body.items",  # a list: CEL's copy
        "steps.call.output",
        "trigger",
        "steps.call.output.status == 200 && size(steps.call.output.headers) == 1",
        "steps.call.output.body.items[1].a",
        "steps.call.output.body.items.map(i, i.a)",
        "steps.call.output.headers['content-type'].startsWith('application/')",
        "has(steps.call.output.body.score) && !has(steps.call.output.body.other)",
        "steps.call.output.body.score + steps.call.output.body.items.size()",
        "steps.call.output.body.score > 2 ? steps.call.output : steps.prepare",
        "'steps.call.output' + trigger.body.pick",
    ],
)
def test_an_expression_answers_what_cel_answers_given_the_whole_scope(expression):
    answer, cels = evaluate(expression, SCOPE), cel.compile(expression).execute(SCOPE)
    assert (answer, type(answer)) == (cels, type(cels))


@pytest.mark.parametrize(
    ("expression", "missing"),
    [
        ("steps.call.output.body.other", "other"),
        ("steps.call.output.status.code", None),  # a field of a number
        ("trigger.body.amount.value > 1", None),
    ],
)
def test_a_field_that_is_not_there_fails_as_cel_fails(expression, missing):
    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, SCOPE)
    if missing:
        assert f"no field {missing!r}" in raised.value.reason
    with pytest.raises(Exception):  # CEL's own error types vary
        cel.compile(expression).execute(SCOPE)
