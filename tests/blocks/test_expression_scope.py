"""An expression sees the whole run scope, however it names what it reads (each evaluation
is given only the parts it reads: the CEL library converts every value it is given)."""

from __future__ import annotations

import pytest

from apps.blocks.expressions import ExpressionError, evaluate

SCOPE = {
    "trigger": {"body": {"amount": 1200, "pick": "score"}},
    "steps": {
        "prepare": {"output": {"amount": 1200}, "port": None},
        "score": {"output": {"risk": 0.9}, "port": None},
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
        ("size(steps)", 2),
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
