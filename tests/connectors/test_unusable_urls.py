"""A URL the client cannot read unambiguously is a 4xx with a reason on every path: saving
a connection, its Test button (HTML and API), its OAuth2 token URL, and a step."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.connectors.models import Connection
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)

UNUSABLE = [
    ("http://127.0.0.1:99999/", "port 99999 is out of range"),
    ("http://\u0661\u0662\u0667.0.0.1/", "cannot be used"),
    ("http://0x7f.1/", "not a plain IPv4 address"),
    ("http://2130706433/", "not a plain IPv4 address"),
    ("http://svc@127.0.0.1/", "user name or password"),
]


def stored(workspace, **config):
    """A connection row as an older release may have saved it (today's validation would
    refuse it), so the Test button meets it."""
    return Connection.objects.create(
        workspace=workspace, name="legacy", type="http_api", config={"auth": "none", **config}
    )


@pytest.mark.parametrize(("base_url", "says"), UNUSABLE)
def test_the_test_button_answers_422_with_the_reason(admin_client, workspace, base_url, says):
    connection = stored(workspace, base_url=base_url)
    path = reverse(
        "connections:test", kwargs={"workspace_slug": "acme", "connection_id": connection.pk}
    )
    page = admin_client.post(path, HTTP_HX_REQUEST="true")
    assert page.status_code == 422 and says in page.content.decode()
    answer = admin_client.post(f"/api/w/acme/connections/{connection.pk}/test/")
    assert answer.status_code == 422 and says in answer.json()["message"]


@pytest.mark.parametrize(("base_url", "says"), UNUSABLE)
def test_saving_a_connection_with_such_a_url_is_a_400(admin_client, base_url, says):
    response = admin_client.post(
        "/api/w/acme/connections/",
        {"name": "ops", "type": "http_api", "config": {"auth": "none", "base_url": base_url}},
        content_type="application/json",
    )
    assert response.status_code == 400 and says in str(response.json()["error"])


def test_an_unusable_token_url_is_a_reason_not_a_crash(admin_client, workspace):
    connection = stored(
        workspace,
        auth="oauth2_client_credentials",
        base_url="https://api.example.com",
        token_url="https://auth.example.com:70000/token",
        client_id="flowgate",
    )
    answer = admin_client.post(f"/api/w/acme/connections/{connection.pk}/test/")
    assert answer.status_code == 422
    assert (
        "token_url: the URL cannot be used: port 70000 is out of range"
        in (answer.json()["message"])
    )


def test_a_step_on_a_connection_saved_with_such_a_url_fails_with_the_reason(workspace, admin_user):
    stored(workspace, base_url="http://127.0.0.1:99999/")
    flow = published_flow(
        workspace,
        admin_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("call", "connector.http", url="/x", connection="legacy"),
            ],
            [("start", "call")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    advance(run.id)
    step = StepRun.objects.get(run=run, node_id="call")
    assert "base_url: the URL cannot be used: port 99999 is out of range" in step.error["message"]


@pytest.mark.parametrize(("url", "says"), UNUSABLE)
def test_a_step_with_such_a_url_fails_with_the_reason(workspace, admin_user, url, says):
    flow = published_flow(
        workspace,
        admin_user,
        definition(
            [
                node("start", "trigger.manual"),
                node("call", "connector.http", url="{{ trigger.body.url }}"),
            ],
            [("start", "call")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({"url": url}), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    step = StepRun.objects.get(run=run, node_id="call")
    assert run.status == "failed" and step.error["class"] != "internal"
    assert says in step.error["message"]
