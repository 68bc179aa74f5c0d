"""The Evaluate page: builders add cases and start comparisons; bad input is a 400 with the
reason on the page; reviewers only look; other workspaces get a 404."""

from __future__ import annotations

import pytest

from apps.evaluations.models import EvalCase, Evaluation
from apps.evaluations.services import eval_case_save
from apps.runs.models import Run
from tests.evaluations.test_services import routing_flow
from tests.runs.helpers import published_flow

pytestmark = pytest.mark.django_db


def url(flow, tail: str = "") -> str:
    return f"/w/acme/evaluations/flows/{flow.id}/{tail}"


@pytest.fixture
def flow(workspace, builder_user):
    return published_flow(workspace, builder_user, routing_flow("'cards'"), name="Routing")


def test_a_builder_adds_a_case_and_sees_it(builder_client, flow):
    response = builder_client.post(
        url(flow, "cases/"),
        {"name": "lost card", "input": '{"text": "lost"}', "expected": '{"team": "cards"}'},
    )
    assert response.status_code == 302
    case = EvalCase.objects.get(flow=flow)
    assert (case.input, case.expected) == ({"text": "lost"}, {"team": "cards"})
    page = builder_client.get(url(flow))
    assert page.status_code == 200 and b"lost card" in page.content
    assert b"v1" in page.content and b"draft" in page.content


def test_bad_cases_are_a_400_with_the_reason(builder_client, flow):
    not_json = builder_client.post(
        url(flow, "cases/"), {"name": "x", "input": "{nope", "expected": "{}"}
    )
    assert not_json.status_code == 400 and b"not JSON" in not_json.content
    not_object = builder_client.post(
        url(flow, "cases/"), {"name": "x", "input": "{}", "expected": "[1, 2]"}
    )
    assert not_object.status_code == 400 and b"JSON object of fields" in not_object.content
    no_name = builder_client.post(
        url(flow, "cases/"), {"name": " ", "input": "{}", "expected": "{}"}
    )
    assert no_name.status_code == 400 and b"needs a name" in no_name.content
    assert not EvalCase.objects.exists()


def test_starting_a_comparison_opens_its_report(builder_client, flow, builder_user):
    eval_case_save(flow=flow, actor=builder_user, name="one", input={"text": "card"}, expected={})
    response = builder_client.post(url(flow, "start/"), {"baseline": "v1", "candidate": "draft"})
    evaluation = Evaluation.objects.get(flow=flow)
    assert response.status_code == 302 and response["Location"] == url(flow, f"{evaluation.id}/")
    assert Run.objects.filter(flow=flow, trigger="evaluation").count() == 2
    report = builder_client.get(response["Location"])
    assert report.status_code == 200 and b'data-finished="false"' in report.content
    fragment = builder_client.get(response["Location"], headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and b"<html" not in fragment.content


def test_a_bad_comparison_is_a_400_and_starts_nothing(builder_client, flow, builder_user):
    eval_case_save(flow=flow, actor=builder_user, name="one", input={}, expected={})
    same = builder_client.post(url(flow, "start/"), {"baseline": "v1", "candidate": "v1"})
    assert same.status_code == 400 and b"two different versions" in same.content
    unknown = builder_client.post(url(flow, "start/"), {"baseline": "v9", "candidate": "draft"})
    assert unknown.status_code == 400 and b"has no version 9" in unknown.content
    assert not Run.objects.exists() and not Evaluation.objects.exists()


def test_reviewers_look_but_do_not_evaluate(reviewer_client, flow):
    assert reviewer_client.get(url(flow)).status_code == 200
    assert reviewer_client.post(url(flow, "start/"), {"baseline": "v1"}).status_code == 403
    assert (
        reviewer_client.post(url(flow, "cases/"), {"name": "x", "input": "{}"}).status_code == 403
    )


def test_another_workspaces_flow_is_a_404(outsider_client, flow):
    assert outsider_client.get(url(flow)).status_code == 404
