"""Evaluations as a builder uses them: cases with expected results, two versions compared on
them by real runs on a real worker (pass rate, cost, latency), from the CLI and the page."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import call_command

from apps.dashboard.selectors import dashboard_figures
from apps.evaluations.models import Evaluation
from apps.evaluations.selectors import evaluation_report, mismatches
from apps.evaluations.services import EvaluationError, eval_case_save, evaluation_start
from apps.flows.services import flow_draft_save
from apps.runs.models import Run, Trigger
from tests.runs.helpers import definition, node, published_flow


def routing_flow(team: str) -> dict:
    """Answers ``{"team": <team expression>, "text": ...}``."""
    return definition(
        [
            node("start", "trigger.manual", sample={"text": "I lost my card"}),
            node("reply", "flow.respond", body={"team": team, "text": "trigger.body.text"}),
        ],
        [("start", "reply")],
        name="Routing",
    )


SMARTER = "trigger.body.text.contains('card') ? 'cards' : 'loans'"


def routing_with_cases(workspace, actor):
    flow = published_flow(workspace, actor, routing_flow("'cards'"), name="Routing")
    flow.refresh_from_db()
    flow_draft_save(
        flow=flow, actor=actor, definition=routing_flow(SMARTER), revision=flow.draft_revision
    )
    flow.refresh_from_db()
    eval_case_save(
        flow=flow, actor=actor, name="lost card", input={"text": "I lost my card"},
        expected={"team": "cards"},
    )  # fmt: skip
    eval_case_save(
        flow=flow, actor=actor, name="loan", input={"text": "a loan please"},
        expected={"team": "loans"},
    )  # fmt: skip
    return flow


def settled(evaluation: Evaluation, seconds: float = 60):
    deadline = time.monotonic() + seconds
    report = evaluation_report(evaluation=evaluation)
    while not report.finished and time.monotonic() < deadline:
        time.sleep(0.2)
        report = evaluation_report(evaluation=evaluation)
    return report


def test_the_draft_is_compared_with_the_published_version_on_every_case(
    transactional_db, celery_worker, workspace, builder_user
):
    flow = routing_with_cases(workspace, builder_user)
    evaluation = evaluation_start(
        flow=flow, actor=builder_user, baseline="published", candidate="draft"
    )
    report = settled(evaluation)

    assert report.finished
    assert (report.baseline.reference, report.candidate.reference) == ("v1", "draft")
    assert (report.baseline.passed, report.baseline.failed, report.baseline.pass_rate) == (
        1,
        1,
        0.5,
    )
    assert (report.candidate.passed, report.candidate.pass_rate) == (2, 1.0)
    assert report.baseline.latency_p50_ms is not None and report.candidate.cost == 0.0
    loan = next(row for row in report.rows if row.name == "loan")
    assert loan.baseline.reasons == ['team is "cards", expected "loans"']
    assert loan.candidate.passed
    runs = Run.objects.filter(flow=flow)
    assert {run.trigger for run in runs} == {Trigger.EVALUATION} and runs.count() == 4
    assert all(run.dry_run for run in runs)
    # Evaluation runs are not the workspace's work: the dashboard does not count them.
    figures = dashboard_figures(workspace=workspace, range_name="1h")
    assert figures["runs"]["total"] == 0 and figures["steps"]["latency"] == []


def test_flows_eval_prints_the_comparison_and_fails_on_a_regression(
    transactional_db, celery_worker, workspace, builder_user
):
    flow = routing_with_cases(workspace, builder_user)
    out = io.StringIO()
    call_command("flows", "--workspace", "acme", "eval", flow.slug, stdout=out)
    table = out.getvalue()
    assert "baseline v1" in table and "candidate draft" in table
    assert "1/2 (50%)" in table and "2/2 (100%)" in table
    assert 'FAIL loan on v1: team is "cards", expected "loans"' in table

    # The other way round the candidate passes fewer cases: exit status 1, for CI.
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command(
            "flows", "--workspace", "acme", "eval", flow.slug,
            "--version", "draft", "--compare", "v1", "--json", stdout=out,
        )  # fmt: skip
    assert exit_status.value.code == 1
    report = json.loads(out.getvalue())
    assert report["baseline"]["passed"] == 2 and report["candidate"]["passed"] == 1


@pytest.mark.django_db
def test_bad_comparisons_are_refused_with_the_reason(workspace, builder_user):
    flow = published_flow(workspace, builder_user, routing_flow("'cards'"), name="Routing")
    with pytest.raises(EvaluationError, match="no evaluation cases yet"):
        evaluation_start(flow=flow, actor=builder_user, baseline="v1", candidate="draft")
    eval_case_save(flow=flow, actor=builder_user, name="one", input={}, expected={})
    with pytest.raises(EvaluationError, match="has no version 7"):
        evaluation_start(flow=flow, actor=builder_user, baseline="v7", candidate="draft")
    with pytest.raises(EvaluationError, match="not 'draft', 'published' or a version number"):
        evaluation_start(flow=flow, actor=builder_user, baseline="yesterday", candidate="draft")
    with pytest.raises(EvaluationError, match="two different versions"):
        evaluation_start(flow=flow, actor=builder_user, baseline="published", candidate="v1")
    with pytest.raises(EvaluationError, match="already has a case called 'one'"):
        eval_case_save(flow=flow, actor=builder_user, name="one", input={}, expected={})
    with pytest.raises(EvaluationError, match="the input is a JSON object"):
        eval_case_save(flow=flow, actor=builder_user, name="two", input=[1], expected={})
    assert not Run.objects.exists()


def test_expected_fields_are_matched_as_a_subset_of_the_result():
    assert mismatches({"team": "cards"}, {"team": "cards", "text": "x"}) == []
    assert mismatches({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == []
    assert mismatches({"a": {"b": 1}}, {"a": {"b": 2}}) == ["a.b is 2, expected 1"]
    assert mismatches({"ok": True}, {"ok": 1}) == ["ok is 1, expected true"]
    assert mismatches({"team": "x"}, None) == ["the result is not an object"]
    assert mismatches({"team": "x"}, {}) == ["team is missing"]
    assert mismatches({}, "anything") == []
