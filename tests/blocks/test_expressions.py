"""What a builder reads when an expression does not parse: where, and what is wrong."""

from __future__ import annotations

import pytest

from apps.blocks.expressions import ExpressionError, compile_expression


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "trigger.body.amount >",
            "cannot parse: it ends too soon at character 22: something is missing at the end",
        ),
        ("a ++ b", "cannot parse: unexpected '+' at character 4"),
        ("x.y.", "cannot parse: unexpected '.' at character 5"),
        ("1 2", "cannot parse: unexpected '2' at character 3"),
        ("amount > 'x", "cannot parse: a string is not closed at character 10: 'x"),
        ('a == "b', 'cannot parse: a string is not closed at character 6: "b'),
    ],
)
def test_a_syntax_error_says_where_and_what_in_plain_words(source, reason):
    with pytest.raises(ExpressionError) as raised:
        compile_expression(source)
    assert raised.value.reason == reason
    assert str(raised.value) == f"expression {source!r}: {reason}"
