"""JSON that parses but Postgres cannot store, and input beyond a column's size: every entry
point answers 400 with a message saying what is wrong, and writes nothing."""

from __future__ import annotations

import pytest

from apps.flows.models import Flow
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db

HOSTILE = {
    "U+0000 in a value": ('{"name": "N\\u0000UL"}', "U+0000"),
    "U+0000 in a key": ('{"na\\u0000me": 1}', "U+0000"),
    "an unpaired surrogate": ('{"name": "\\ud800"}', "unpaired surrogate"),
    "a number beyond a double": ('{"amount": 1e400}', "too large"),
    "NaN": ('{"amount": NaN}', "NaN is not a JSON number"),
    "nesting 5,000 deep": ("[" * 5000 + "]" * 5000, "nested more than"),
}


@pytest.fixture
def hook_flow(workspace, builder_user):
    return published_flow(
        workspace,
        builder_user,
        definition(
            [node("hook", "trigger.webhook"), node("s", "transform.set", values={"a": "1"})],
            [("hook", "s")],
        ),
        name="Hook",
    )


@pytest.mark.parametrize("body,reason", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_api_refuses_json_it_could_not_store(admin_client, hook_flow, body, reason):
    flows_before = Flow.objects.count()
    for path in (
        "/api/w/acme/flows/",
        "/api/w/acme/flows/import/",
        f"/api/w/acme/flows/{hook_flow.id}/validate/",
        f"/api/w/acme/flows/{hook_flow.id}/runs/",
        "/api/w/acme/expressions/preview/",
    ):
        response = admin_client.post(path, data=body, content_type="application/json")
        assert response.status_code == 400, path
        assert reason in response.json()["error"]["message"], path
    assert Flow.objects.count() == flows_before and not Run.objects.exists()


@pytest.mark.parametrize("body,reason", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_webhook_refuses_json_it_could_not_store(client, hook_flow, body, reason):
    response = client.post(
        f"/hooks/{hook_flow.webhook_token}", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert reason in response.json()["error"]["message"]
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "header,limit", [("Idempotency-Key", 200), ("X-Event-Id", 200), ("X-Correlation-Id", 64)]
)
def test_a_webhook_refuses_keys_longer_than_a_run_holds(client, hook_flow, header, limit):
    response = client.post(
        f"/hooks/{hook_flow.webhook_token}",
        data="{}",
        content_type="application/json",
        headers={header: "k" * (limit + 1)},
    )
    assert response.status_code == 400
    assert f"longer than {limit} characters" in response.json()["error"]["message"]
    assert not Run.objects.exists()


def test_odd_query_strings_and_bodies_are_400s(admin_client, hook_flow):
    bad_flow = admin_client.get("/api/w/acme/runs/?flow=abc")
    assert bad_flow.status_code == 400 and "flow" in bad_flow.json()["error"]["fields"]
    huge = admin_client.get("/api/w/acme/runs/?limit=100000000000000000000")
    assert huge.status_code == 200  # answered with at most the largest page
    for body in ("[1]", "null", '"x"'):
        response = admin_client.post(
            f"/api/w/acme/flows/{hook_flow.id}/validate/",
            data=body,
            content_type="application/json",
        )
        assert response.status_code == 400
        assert "definition" in response.json()["error"]["fields"]


def test_a_step_whose_output_cannot_be_stored_fails_with_the_reason(workspace, builder_user):
    """Outside data (an API's answer) can hold U+0000; the step fails, the worker does not."""
    flow = published_flow(
        workspace,
        builder_user,
        definition(
            [
                node("start", "trigger.manual"),
                # CEL's escape: the definition holds a backslash, the value a U+0000.
                node("s", "transform.set", values={"text": "'N\\u0000UL'"}),
            ],
            [("start", "s")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    outcome = advance(run.id)
    assert outcome.status == "failed"
    step = StepRun.objects.get(run=run, node_id="s")
    assert "cannot be stored" in step.error["message"] and "U+0000" in step.error["message"]


def test_the_api_answers_in_json_even_outside_its_views(admin_client, settings):
    """A path no route matches (a malformed id) and a body over the limit are JSON too."""
    missing = admin_client.get("/api/w/acme/flows/not-a-uuid/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    huge = admin_client.post(
        "/api/w/acme/flows/", data='{"name": "' + "x" * 2048 + '"}', content_type="application/json"
    )
    assert huge.status_code == 413 and "over 1024 bytes" in huge.json()["error"]["message"]
    page = admin_client.get("/w/acme/flows/not-a-uuid/")
    assert page.status_code == 404 and "text/html" in page["Content-Type"]
