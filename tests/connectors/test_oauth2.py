"""HTTP API connections with OAuth2 client credentials: a real token endpoint on loopback,
tokens reused until they expire, a refused client is "authentication failed"."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from apps.connectors.services import connection_create, connection_test
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.http_server import CountingServer

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_SECRET = "cs-0a1b2c3d4e"


class TokenServer:
    """An OAuth2 token endpoint: client ``flowgate`` / CLIENT_SECRET gets a token."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                outer.requests.append(form)
                expected = base64.b64encode(f"flowgate:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    status, body = 401, {"error": "invalid_client"}
                else:
                    token = f"at-{len(outer.requests)}"
                    status, body = 200, {"access_token": token, "expires_in": 3600}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/oauth/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def servers(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}
    with TokenServer() as tokens, CountingServer() as api:
        yield tokens, api


def oauth_connection(workspace, actor, tokens, api, secret=CLIENT_SECRET, name="erp"):
    return connection_create(
        workspace=workspace,
        actor=actor,
        name=name,
        type="http_api",
        config={
            "auth": "oauth2_client_credentials",
            "base_url": api.url,
            "token_url": tokens.url,
            "client_id": "flowgate",
            "scope": "orders:read",
        },
        secrets={"client_secret": secret},
    )


def call_twice(workspace, actor, connection="erp"):
    flow = published_flow(
        workspace,
        actor,
        definition(
            [
                node("start", "trigger.manual"),
                node("first", "connector.http", url="/orders", connection=connection),
                node("second", "connector.http", url="/orders/2", connection=connection),
            ],
            [("start", "first"), ("first", "second")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run


def test_requests_carry_a_token_fetched_once(workspace, admin_user, servers):
    tokens, api = servers
    oauth_connection(workspace, admin_user, tokens, api)
    run = call_twice(workspace, admin_user)
    assert run.status == "succeeded", run.error
    assert [request["headers"]["Authorization"] for request in api.requests] == [
        "Bearer at-1",
        "Bearer at-1",
    ]
    [form] = tokens.requests
    assert form == {"grant_type": ["client_credentials"], "scope": ["orders:read"]}


def test_a_refused_client_says_authentication_failed(workspace, admin_user, servers):
    tokens, api = servers
    connection = oauth_connection(workspace, admin_user, tokens, api, secret="wrong", name="bad")
    outcome = connection_test(connection=connection)
    assert outcome.stage == "auth" and "invalid_client" in outcome.message
    run = call_twice(workspace, admin_user, connection="bad")
    assert run.status == "failed"
    assert "authentication failed" in run.error["message"] and api.requests == []


def test_oauth2_needs_a_token_url_and_client_id(workspace, admin_user):
    from apps.connectors.services import ConnectionInvalid

    with pytest.raises(ConnectionInvalid):
        connection_create(
            workspace=workspace,
            actor=admin_user,
            name="x",
            type="http_api",
            config={"auth": "oauth2_client_credentials"},
            secrets={},
        )
