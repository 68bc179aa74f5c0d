"""The authoring guide's worked example is a flow that validates and runs as described."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings

from apps.flows.preflight import flow_problems
from apps.flows.services import flow_create
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start

pytestmark = pytest.mark.django_db

GUIDE = settings.BASE_DIR / "docs" / "authoring.md"


def worked_example() -> dict:
    text = GUIDE.read_text()
    found = re.search(r"<!-- worked-example.*?-->\s*```json\n(.*?)```", text, re.DOTALL)
    assert found, "the guide's worked example is marked <!-- worked-example -->"
    return json.loads(found.group(1))


def test_the_worked_example_has_no_problems_and_answers_as_the_guide_says(workspace, builder_user):
    example = worked_example()
    assert flow_problems(workspace_id=workspace.id, definition=example) == []
    flow = flow_create(
        workspace=workspace, actor=builder_user, name=example["name"], definition=example
    )
    sample = example["nodes"][0]["config"]["sample"]
    run = run_start(
        flow=flow,
        trigger="manual",
        payload=envelope(sample),
        draft_definition=example,
        enqueue=False,
    ).run
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    body = run.response["body"]
    assert (body["decision"], body["total"], body["note"]) == ("approve", 200.0, "no note")
    assert [line["position"] for line in body["lines"]] == [1, 2]
    assert body["lines"][0]["net"] == 100.0


def test_the_guide_is_served_to_logged_in_people(builder_client, client):
    page = builder_client.get("/docs/authoring/")
    assert page.status_code == 200
    assert "<h2>What an expression sees</h2>" in page.content.decode()
    assert client.get("/docs/authoring/").status_code == 302  # to the login page
