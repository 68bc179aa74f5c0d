"""Expectations beyond field matching: the matchers a case may use in place of a value
($exact, $approx, $contains, $regex, $one_of), the reasons a failed check gives, and a
malformed matcher refused when the case is saved."""

from __future__ import annotations

import pytest

from apps.evaluations.expectations import expectation_problem, mismatches
from apps.evaluations.services import EvaluationError, eval_case_save
from tests.runs.helpers import definition, node, published_flow

RESULT = {
    "team": "cards",
    "score": 0.912,
    "reply": "Your card C-1042 is blocked.",
    "reasons": ["amount 120 is over the meals limit of 100", "needs a receipt"],
    "ticket": {"id": "T-7", "tags": ["card"]},
}


@pytest.mark.parametrize(
    "expected",
    [
        {"score": {"$approx": 0.9, "$tolerance": 0.02}},
        {"reply": {"$contains": "is blocked"}},
        {"reasons": {"$contains": "over the meals limit"}},
        {"reasons": {"$contains": "needs a receipt"}},
        {"reply": {"$regex": "C-[0-9]{4}"}},
        {"team": {"$one_of": ["cards", "loans"]}},
        {"ticket": {"$exact": {"id": "T-7", "tags": ["card"]}}},
        {"ticket": {"id": {"$regex": "^T-"}}, "team": "cards"},
    ],
)
def test_matchers_accept_what_they_describe(expected):
    assert expectation_problem(expected) == ""
    assert mismatches(expected, RESULT) == []


@pytest.mark.parametrize(
    ("expected", "reason"),
    [
        ({"score": {"$approx": 0.8, "$tolerance": 0.1}}, "score is 0.912, expected 0.8 ± 0.1"),
        ({"score": {"$approx": 0.91}}, "score is 0.912, expected 0.91 ± 1e-06"),
        ({"team": {"$approx": 1}}, 'team is "cards", expected 1 ± 1e-06'),
        (
            {"reply": {"$contains": "unblocked"}},
            'reply is "Your card C-1042 is blocked.", expected it to contain "unblocked"',
        ),
        (
            {"reply": {"$regex": "^C-"}},
            'reply is "Your card C-1042 is blocked.", expected a match of /^C-/',
        ),
        ({"team": {"$one_of": ["loans"]}}, 'team is "cards", expected one of ["loans"]'),
        (
            {"ticket": {"$exact": {"id": "T-7"}}},
            'ticket is {"id": "T-7", "tags": ["card"]}, expected exactly {"id": "T-7"}',
        ),
        ({"missing": {"$contains": "x"}}, "missing is missing"),
    ],
)
def test_a_failed_matcher_says_what_it_found_and_wanted(expected, reason):
    assert mismatches(expected, RESULT) == [reason]


def test_plain_values_match_as_before():
    assert mismatches({"ticket": {"id": "T-7"}}, RESULT) == []  # other fields ignored
    assert mismatches({"ticket": {"id": "T-8"}}, RESULT) == ['ticket.id is "T-7", expected "T-8"']
    assert mismatches({"ok": True}, {"ok": 1}) == ["ok is 1, expected true"]
    assert mismatches({"team": "x"}, None) == ["the result is not an object"]


@pytest.mark.parametrize(
    ("expected", "problem"),
    [
        ({"team": {"$like": "c%"}}, "team: use one of $exact, $approx"),
        ({"team": {"$contains": "a", "$regex": "b"}}, "team: use one of"),
        ({"score": {"$approx": "0.9"}}, "score: $approx and $tolerance are numbers"),
        ({"score": {"$approx": 1, "$tolerance": -1}}, "the tolerance not negative"),
        ({"reply": {"$contains": 3}}, "reply: $contains takes a text"),
        ({"reply": {"$regex": "(unclosed"}}, "reply: $regex is not a valid pattern"),
        ({"reply": {"$regex": "x" * 501}}, "a pattern of 1 to 500 characters"),
        ({"team": {"$one_of": []}}, "team: $one_of takes a non-empty list"),
        ({"a": {"b": {"$exact": 1, "$tolerance": 1}}}, "a.b: use one of"),
    ],
)
@pytest.mark.django_db
def test_a_malformed_matcher_is_refused_when_the_case_is_saved(
    expected, problem, workspace, builder_user
):
    assert problem in expectation_problem(expected)
    flow = published_flow(
        workspace,
        builder_user,
        definition([node("start", "trigger.manual")], name="Matchers"),
        name="Matchers",
    )
    with pytest.raises(EvaluationError, match=r"\$|tolerance") as refused:
        eval_case_save(flow=flow, actor=builder_user, name="x", input={}, expected=expected)
    assert refused.value.field == "expected"
