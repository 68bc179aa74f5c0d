"""The MCP endpoint as an outside agent sees it: a real MCP client (the official SDK) against
the studio's web process (uvicorn) on loopback, authenticated with workspace API tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import httpx2
import pytest
from django.db import connection
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from apps.accounts.services import api_token_create
from apps.audit.models import AuditEvent
from apps.core import ratelimit
from apps.mcp_tools.server import McpEndpoint
from apps.mcp_tools.services import flow_tool_save
from apps.policies.models import Policy
from apps.policies.services import policy_publish
from apps.runs.models import Run, Trigger
from tests.runs.helpers import definition, node, published_flow
from tests.support.processes import studio_web_server

pytestmark = pytest.mark.slow


def triage_flow() -> dict:
    return definition(
        [
            node("start", "trigger.manual", sample={"amount": 50, "customer": "ACME-1"}),
            node(
                "score", "transform.set", values={"risk": "trigger.body.amount > 1000 ? 0.9 : 0.1"}
            ),
            node(
                "reply",
                "flow.respond",
                body={
                    "decision": "steps.score.output.risk > 0.5 ? 'review' : 'approve'",
                    "risk": "steps.score.output.risk",
                },
            ),
        ],
        [("start", "score"), ("score", "reply")],
        name="Claim triage",
    )


@pytest.fixture
def web_server(transactional_db, test_database_url):
    with studio_web_server(test_database_url) as url:
        yield url


def end_idle_connections() -> None:
    """The in-process endpoint's worker threads keep their connections (CONN_MAX_AGE): end
    them, or the test database cannot be dropped at the end of the session."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND state = 'idle' AND application_name = ''"
        )


def agent(url: str, secret: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=60)
    return Client(streamable_http_client(f"{url}/mcp", http_client=http))


async def list_tools(url: str, secret: str) -> list[Any]:
    async with agent(url, secret) as client:
        return (await client.list_tools()).tools


async def call_tool(url: str, secret: str, name: str, arguments: dict) -> Any:
    async with agent(url, secret) as client:
        return await client.call_tool(name, arguments)


def test_an_agent_lists_the_exposed_flows_and_each_call_is_a_governed_run(
    web_server, workspace, admin_user, builder_user
):
    triage = published_flow(workspace, builder_user, triage_flow(), name="Claim triage")
    published_flow(workspace, builder_user, triage_flow(), name="Not a tool")
    flow_tool_save(
        flow=triage, actor=admin_user, enabled=True, name="claim-triage",
        description="Decide whether a claim is approved or reviewed.",
    )  # fmt: skip
    builder = api_token_create(user=builder_user, workspace=workspace, name="agent").secret

    tools = asyncio.run(list_tools(web_server, builder))
    assert [tool.name for tool in tools] == ["claim-triage"]
    assert tools[0].description == "Decide whether a claim is approved or reviewed."
    assert tools[0].input_schema["properties"]["amount"]["type"] == "integer"
    assert tools[0].input_schema["properties"]["customer"]["type"] == "string"

    result = asyncio.run(call_tool(web_server, builder, "claim-triage", {"amount": 50}))
    assert not result.is_error
    assert result.structured_content["result"] == {"decision": "approve", "risk": 0.1}
    run = Run.objects.get(pk=result.structured_content["run"])
    assert (run.trigger, run.status, run.requested_by) == (Trigger.MCP, "succeeded", builder_user)
    assert run.input["body"] == {"amount": 50}
    called = AuditEvent.objects.get(action="mcp.tool_called")
    assert called.object_id == str(run.pk) and called.actor == builder_user
    assert AuditEvent.objects.filter(action="gate.evaluated", object_id="mcp_tool_call").exists()

    # Arguments that do not match the input schema start no run; the agent sees why.
    invalid = asyncio.run(call_tool(web_server, builder, "claim-triage", {"amount": "lots"}))
    assert invalid.is_error
    assert invalid.structured_content["error"] == "invalid_arguments"
    assert "amount: 'lots' is not of type 'integer'" in invalid.structured_content["reasons"]

    # The workspace's policy restricts the tool to admins: the builder's call is denied.
    policy = Policy.objects.get(workspace=workspace, slug="mcp_tool_call")
    source = policy.draft_source.replace(
        "restricted_tools := {}", 'restricted_tools := {"claim-triage": {"admin"}}'
    )
    policy_publish(policy=policy, actor=admin_user, source=source, run_tests=False)
    denied = asyncio.run(call_tool(web_server, builder, "claim-triage", {"amount": 5000}))
    assert denied.is_error and denied.structured_content["error"] == "denied"
    assert denied.structured_content["reasons"] == ["only admin may call claim-triage"]
    admin = api_token_create(user=admin_user, workspace=workspace, name="ops").secret
    allowed = asyncio.run(call_tool(web_server, admin, "claim-triage", {"amount": 5000}))
    assert allowed.structured_content["result"]["decision"] == "review"
    assert Run.objects.filter(trigger=Trigger.MCP).count() == 2

    # A read-only token lists the tools but cannot call them.
    reader = api_token_create(
        user=admin_user, workspace=workspace, name="reader", scope="read"
    ).secret
    assert [tool.name for tool in asyncio.run(list_tools(web_server, reader))] == ["claim-triage"]
    refused = asyncio.run(call_tool(web_server, reader, "claim-triage", {"amount": 1}))
    assert refused.is_error and refused.structured_content["error"] == "forbidden"

    # An unknown (or switched-off) tool is a protocol error, not a run.
    with pytest.raises(ExceptionGroup) as caught:  # the client's task group wraps it
        asyncio.run(call_tool(web_server, admin, "wire-money", {}))
    assert caught.group_contains(MCPError, match="no tool called 'wire-money'")
    assert Run.objects.filter(trigger=Trigger.MCP).count() == 2


def test_a_missing_or_bad_token_is_a_401(web_server, workspace, builder_user):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    missing = httpx.post(f"{web_server}/mcp", json=initialize, timeout=30)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = httpx.post(
        f"{web_server}/mcp",
        json=initialize,
        headers={"Authorization": "Bearer fg_nope"},
        timeout=30,
    )
    assert bad.status_code == 401 and bad.json() == {"error": "Invalid API token."}
    with pytest.raises(Exception):  # the SDK's transport error for a 401
        asyncio.run(list_tools(web_server, "fg_nope"))


def test_a_token_over_the_api_rate_limit_gets_a_429(
    transactional_db, settings, monkeypatch, workspace, builder_user
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"api": "2/3600"}}
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_900.0)  # 15 min into a window
    secret = api_token_create(user=builder_user, workspace=workspace, name="busy").secret
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    async def three_requests() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=McpEndpoint())  # in process: the settings apply
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            headers = {"Authorization": f"Bearer {secret}"}
            return [await client.post("/mcp", json=listing, headers=headers) for _ in range(3)]

    answers = asyncio.run(three_requests())
    end_idle_connections()
    assert [answer.status_code == 429 for answer in answers] == [False, False, True]
    # The next window counts the two as spread over this one: one more goes ahead once half
    # of them has slid out.
    assert answers[2].headers["retry-after"] == str(5400 - 900)


def test_malformed_requests_are_4xx_never_5xx(transactional_db, workspace, builder_user):
    secret = api_token_create(user=builder_user, workspace=workspace, name="fuzz").secret
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    requests = [
        ("GET", {}),
        ("DELETE", {}),
        ("POST", {"content": b"{nope", "headers": {"content-type": "application/json"}}),
        ("POST", {"json": {"not": "json-rpc"}}),
        ("POST", {"json": {**call, "params": {"name": "x", "arguments": [1]}}}),
        ("POST", {"json": {**call, "params": {}}}),
    ]

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=McpEndpoint())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answers = []
            for method, options in requests:
                extra = options.pop("headers", {})
                request = client.request(method, "/mcp", headers={**headers, **extra}, **options)
                answers.append(await asyncio.wait_for(request, 30))
            return answers

    answers = asyncio.run(send_all())
    end_idle_connections()
    statuses = [answer.status_code for answer in answers]
    assert statuses[:2] == [405, 405], statuses  # no stream to hold open, no session to end
    assert all(400 <= status < 500 for status in statuses[2:4]), statuses
    # A call with bad params is a JSON-RPC error (HTTP 200 or 4xx), never a server error.
    assert all(status < 500 for status in statuses), statuses
    assert not Run.objects.exists()
