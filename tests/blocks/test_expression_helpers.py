"""What a builder writes for a field that may be missing, and over lists of numbers."""

from __future__ import annotations

import pytest

from apps.blocks.expressions import ExpressionError, evaluate

CLAIM = {
    "trigger": {
        "body": {
            "customer": {"tier": "gold"},
            "lines": [{"amount": 12.5}, {"amount": 30}, {"amount": 7.5}],
        }
    }
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("has(trigger.body.note) ? trigger.body.note : 'none'", "none"),
        ("get(trigger.body, 'customer.tier', 'standard')", "gold"),
        ("get(trigger.body, 'customer.region', 'EU')", "EU"),
        ("trigger.body.get('discount', 0)", 0),
        ("orValue(trigger.body, 'lines.1.amount', 0)", 30),
        ("sum(trigger.body.lines.map(line, line.amount))", 50.0),
        ("trigger.body.lines.map(line, line.amount).max()", 30),
        ("min(trigger.body.lines.map(line, line.amount))", 7.5),
        ("avg([2, 4])", 3.0),
        ("sum([])", 0),
    ],
)
def test_missing_fields_are_tested_or_defaulted_and_lists_summed(expression, expected):
    assert evaluate(expression, CLAIM) == expected


def test_a_missing_field_says_how_to_guard_it():
    with pytest.raises(ExpressionError, match=r"no field 'note': test it with has\(\.\.\.\)"):
        evaluate("trigger.body.note", CLAIM)


def test_a_helper_given_the_wrong_thing_says_what_it_takes():
    with pytest.raises(ExpressionError) as error:
        evaluate("min([])", CLAIM)
    assert error.value.reason == "min() of an empty list has no value: test size() first"
    with pytest.raises(ExpressionError, match=r"sum\(\) takes a list of numbers; it holds 'a'"):
        evaluate("sum(['a'])", CLAIM)
