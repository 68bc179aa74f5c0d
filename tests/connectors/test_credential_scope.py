"""A connection's credentials go only to its base URL: the validator flags a step that
points elsewhere, the step refuses at run time before sending anything, and a redirect to
another origin loses every header the connection added. Two loopback listeners on
different ports are two origins: the connection's API and "another host"."""

from __future__ import annotations

import pytest

from apps.connectors.services import connection_create, connection_update
from apps.flows.services import FlowError, flow_create, flow_draft_save
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "tok-belongs-to-the-api"
API_KEY = "key-belongs-to-the-api"


@pytest.fixture
def hosts(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with CountingServer() as api, CountingServer() as other:
        yield api, other


def api_connection(workspace, actor, base_url, auth="bearer", name="billing"):
    return connection_create(
        workspace=workspace,
        actor=actor,
        name=name,
        type="http_api",
        config={"auth": auth, "base_url": base_url, "header_name": "X-Api-Key"},
        secrets={"token": TOKEN, "api_key": API_KEY},
    )


def call_flow(url: str, connection: str = "billing") -> dict:
    return definition(
        [
            node("start", "trigger.manual"),
            node("call", "connector.http", url=url, connection=connection),
        ],
        [("start", "call")],
    )


def run_call(flow, body=None, trigger="manual", **extra):
    run = run_start(
        flow=flow, trigger=trigger, payload=envelope(body or {}), enqueue=False, **extra
    ).run
    advance(run.id)
    run.refresh_from_db()
    return run, StepRun.objects.filter(run=run, node_id="call").order_by("-attempt").first()


def test_a_step_pointing_a_connection_at_another_host_is_a_problem_on_the_node(
    workspace, admin_user, hosts
):
    api, other = hosts
    api_connection(workspace, admin_user, api.url)
    flow = flow_create(workspace=workspace, actor=admin_user, name="x", definition={})
    saved = flow_draft_save(
        flow=flow, actor=admin_user, definition=call_flow(f"{other.url}/steal"), revision=1
    )
    [problem] = [p for p in saved.problems if p.node == "call"]
    assert problem.field == "url" and "not under the connection's base URL" in problem.message
    with pytest.raises(FlowError):
        published_flow(workspace, admin_user, call_flow(f"{other.url}/steal"))


def test_the_validate_api_flags_a_host_that_is_not_written_out(
    admin_client, workspace, admin_user, hosts
):
    api, _ = hosts
    api_connection(workspace, admin_user, api.url)
    flow = flow_create(workspace=workspace, actor=admin_user, name="x", definition={})
    response = admin_client.post(
        f"/api/w/acme/flows/{flow.id}/validate/",
        {"definition": call_flow("http://127.0.0.1{{ trigger.body.port }}/x")},
        content_type="application/json",
    )
    problems = [p for p in response.json()["problems"] if p["node"] == "call"]
    assert problems and "write the URL's host out" in problems[0]["message"]


@pytest.mark.parametrize(
    ("trigger", "dry_run"), [("manual", False), ("test", False), ("test", True)]
)
def test_a_url_filled_in_at_run_time_cannot_take_the_token_elsewhere(
    workspace, admin_user, hosts, trigger, dry_run
):
    api, other = hosts
    api_connection(workspace, admin_user, api.url)
    flow = published_flow(workspace, admin_user, call_flow("{{ trigger.body.url }}"))
    extra = (
        {"draft_definition": flow.draft_definition, "dry_run": dry_run} if trigger == "test" else {}
    )
    run, step = run_call(flow, {"url": f"{other.url}/steal"}, trigger=trigger, **extra)
    assert run.status == "failed"
    assert "not under the connection's base URL" in step.error["message"]
    assert other.requests == [] and api.requests == []


def test_the_path_prefix_is_part_of_the_scope(workspace, admin_user, hosts):
    api, _ = hosts
    api_connection(workspace, admin_user, f"{api.url}/v1")
    flow = published_flow(workspace, admin_user, call_flow("{{ trigger.body.path }}"))
    for path in ("/../admin", "/%2e%2e/admin", f"{api.url}/v10/x"):
        run, step = run_call(flow, {"path": path})
        assert run.status == "failed", path
        assert "not under the connection's base URL" in step.error["message"]
    assert api.requests == []
    run, _ = run_call(flow, {"path": "/invoices"})
    assert run.status == "succeeded"
    assert [request["path"] for request in api.requests] == ["/v1/invoices"]


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [("bearer", "Authorization", f"Bearer {TOKEN}"), ("header", "X-Api-Key", API_KEY)],
)
def test_a_redirect_to_another_origin_drops_the_connections_credentials(
    workspace, admin_user, hosts, auth, header, value
):
    api, other = hosts
    api_connection(workspace, admin_user, api.url, auth=auth)
    flow = published_flow(workspace, admin_user, call_flow(f"/redirect?to={other.url}/landing"))
    run, _ = run_call(flow)
    assert run.status == "succeeded", run.error
    assert api.requests[0]["headers"][header] == value
    [landed] = other.requests
    assert landed["path"] == "/landing"
    assert header not in landed["headers"] and "Authorization" not in landed["headers"]


def test_a_same_origin_redirect_keeps_the_credentials(workspace, admin_user, hosts):
    api, _ = hosts
    api_connection(workspace, admin_user, api.url, auth="header")
    flow = published_flow(workspace, admin_user, call_flow(f"/redirect?to={api.url}/next"))
    run, _ = run_call(flow)
    assert run.status == "succeeded", run.error
    assert [request["headers"].get("X-Api-Key") for request in api.requests] == [API_KEY] * 2


def test_a_connection_without_a_base_url_lends_its_credentials_to_no_url(
    workspace, admin_user, hosts
):
    _, other = hosts
    connection = api_connection(workspace, admin_user, other.url, name="nobase")
    flow = published_flow(workspace, admin_user, call_flow(f"{other.url}/x", connection="nobase"))
    # The base URL is taken away after the flow's publish: the run is refused all the same.
    connection_update(
        connection=connection, actor=admin_user, config={**connection.config, "base_url": ""}
    )
    run, step = run_call(flow)
    assert run.status == "failed" and "has no base URL" in step.error["message"]
    assert other.requests == []
