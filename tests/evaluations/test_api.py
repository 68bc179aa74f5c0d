"""Evaluation cases and comparisons over the REST API."""

from __future__ import annotations

import pytest

from apps.runs.models import Run
from tests.evaluations.test_services import routing_flow
from tests.mcp_tools.test_api import api
from tests.runs.helpers import published_flow

pytestmark = pytest.mark.django_db


def test_cases_and_a_comparison_through_the_api(workspace, builder_user, reviewer_user):
    flow = published_flow(workspace, builder_user, routing_flow("'cards'"), name="Routing")
    base = f"/api/w/acme/flows/{flow.id}/"
    builder = api(builder_user, workspace)
    created = builder.post(
        base + "eval-cases/",
        {"name": "card", "input": {"text": "card"}, "expected": {"team": "cards"}},
        format="json",
    )
    assert created.status_code == 201
    assert [case["name"] for case in builder.get(base + "eval-cases/").json()] == ["card"]
    bad = builder.post(base + "eval-cases/", {"name": "x", "input": "text"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "input"

    same = builder.post(base + "evaluations/", {"baseline": "v1", "candidate": "v1"}, format="json")
    assert same.status_code == 400 and "two different versions" in same.json()["error"]["message"]
    started = builder.post(base + "evaluations/", {}, format="json")  # published vs draft
    assert started.status_code == 201
    report = started.json()
    assert report["finished"] is False
    assert (report["baseline"]["reference"], report["candidate"]["reference"]) == ("v1", "draft")
    assert Run.objects.filter(trigger="evaluation").count() == 2
    again = builder.get(base + f"evaluations/{report['evaluation']}/").json()
    assert again["cases"][0]["name"] == "card"

    reviewer = api(reviewer_user, workspace)
    assert reviewer.get(base + "evaluations/").status_code == 200
    assert reviewer.post(base + "evaluations/", {}, format="json").status_code == 403
    case_id = created.json()["id"]
    assert reviewer.delete(base + f"eval-cases/{case_id}/").status_code == 403
    assert builder.delete(base + f"eval-cases/{case_id}/").status_code == 204
