"""``safe_request``: the engine's SSRF-guarded calls over connections each thread keeps
(apps/core/kept_connections.py). The guard holds on every hop, redirects and credentials
go as with httpx's client, a kept connection is reused only for its own origin and
allow-list, and one the far end closed is replaced for requests that are safe to repeat.

Every listener is on loopback; an address the guard must refuse is one that is not
allow-listed (127.0.0.1 beside an allowed 127.0.0.2) or is judged in-process.
"""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from apps.core import kept_connections, tracing
from apps.core.http import SSRFError, credential_scope, egress_allowed, safe_request
from tests.support.http_server import CountingServer

ALLOWED, INTERNAL = "127.0.0.2", "127.0.0.1"
KEY = {"Idempotency-Key": "run-1:call"}


@pytest.fixture(autouse=True)
def fresh_connections(monkeypatch):
    """Each test starts with no kept connections in this thread."""
    monkeypatch.setattr(kept_connections, "_kept", threading.local())


@pytest.fixture
def server():
    with CountingServer(host=ALLOWED, keep_alive=True) as running, egress_allowed([ALLOWED]):
        yield running


def post(url: str, headers: dict[str, str] | None = None, **options) -> httpx.Response:
    return safe_request("POST", url, headers=headers or {}, json={"n": 1}, timeout=5, **options)


def test_calls_to_one_origin_reuse_one_connection_and_send_httpx_s_request(server):
    first = post(f"{server.url}/a", KEY)
    second = post(f"{server.url}/b", KEY)
    assert first.status_code == second.status_code == 200
    assert first.json() == {"ok": True, "count": 1}
    assert first.elapsed.total_seconds() > 0
    assert server.requests[0]["port"] == server.requests[1]["port"]
    sent = server.requests[0]
    assert sent["body"] == '{"n":1}'
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["User-Agent"] == "Flowgate/1"
    assert sent["headers"]["Host"] == f"{ALLOWED}:{server.port}"
    assert "Cookie" not in sent["headers"]


def test_a_connection_idle_too_long_or_under_another_allow_list_is_not_reused(server, monkeypatch):
    post(f"{server.url}/a", KEY)
    with egress_allowed([ALLOWED, "203.0.113.0/24"]):
        post(f"{server.url}/b", KEY)
    monkeypatch.setattr(kept_connections, "KEPT_ALIVE_SECONDS", 0)
    post(f"{server.url}/c", KEY)
    assert len({request["port"] for request in server.requests}) == 3
    # Opening that one closed the other expired one, not to hold it half closed.
    assert len(kept_connections._kept.connections) == 1


def test_a_kept_connection_closed_by_the_far_end_is_replaced_for_a_repeatable_request(server):
    post(f"{server.url}/a", KEY)
    server.close_connections()
    assert post(f"{server.url}/keyed", KEY).status_code == 200
    server.close_connections()
    safe_request("GET", f"{server.url}/get", headers={}, timeout=5)
    assert [request["path"] for request in server.requests] == ["/a", "/keyed", "/get"]


def test_a_post_without_an_idempotency_key_is_not_sent_again(server):
    post(f"{server.url}/a")
    server.close_connections()
    with pytest.raises(httpx.TransportError):
        post(f"{server.url}/once")
    assert [request["path"] for request in server.requests] == ["/a"]
    assert post(f"{server.url}/b").status_code == 200  # on a new connection


def test_a_slow_answer_is_a_timeout_and_the_next_call_gets_a_new_connection(server):
    with pytest.raises(httpx.TimeoutException):
        safe_request("GET", f"{server.url}/slow?seconds=2", headers=KEY, timeout=0.3)
    assert post(f"{server.url}/a", KEY).status_code == 200
    assert server.requests[0]["port"] != server.requests[1]["port"]


def test_a_redirect_to_an_address_not_allowed_is_refused_before_connecting(server):
    with CountingServer(host=INTERNAL, port=server.port) as internal:
        with pytest.raises(SSRFError, match=r"127\.0\.0\.1"):
            post(f"{server.url}/redirect?to={internal.url}/admin", KEY)
        with pytest.raises(SSRFError, match="metadata"):
            post(f"{server.url}/redirect?to=http://169.254.169.254/latest", KEY)
        with pytest.raises(SSRFError, match="only http and https"):
            post(f"{server.url}/redirect?to=file:///etc/passwd", KEY)
    assert internal.requests == []


def test_the_first_hop_is_checked_too(server):
    with (
        CountingServer(host=INTERNAL, port=server.port) as internal,
        pytest.raises(SSRFError, match="internal address"),
    ):
        post(f"{internal.url}/x", KEY)
    with pytest.raises(SSRFError, match="user name or password"):
        post(f"http://user:pw@{ALLOWED}:{server.port}/x", KEY)
    assert internal.requests == []


def test_redirects_change_the_method_and_keep_authorization_to_the_origin(server):
    with CountingServer(host=ALLOWED, keep_alive=True) as other:
        headers = {**KEY, "Authorization": "Bearer own", "Cookie": "a=b"}
        post(f"{server.url}/redirect?to=/same", headers)
        post(f"{server.url}/redirect-307?to={other.url}/elsewhere", headers)
    same = server.requests[1]
    assert (same["method"], same["path"], same["body"]) == ("GET", "/same", "")
    assert same["headers"]["Authorization"] == "Bearer own" and "Cookie" not in same["headers"]
    [elsewhere] = other.requests
    assert (elsewhere["method"], elsewhere["body"]) == ("POST", '{"n":1}')
    assert "Authorization" not in elsewhere["headers"]
    assert elsewhere["headers"]["Host"] == f"{ALLOWED}:{other.port}"


def test_a_body_given_as_bytes_is_sent_as_it_is_and_a_redirect_can_be_the_answer(server):
    body = b'{"signed": "exactly these bytes"}'
    headers = {"Content-Type": "application/json; charset=utf-8"}
    answer = safe_request(
        "POST",
        f"{server.url}/redirect?to=/elsewhere",
        headers=headers,
        content=body,
        timeout=5,
        follow_redirects=False,
    )
    assert answer.status_code == 302
    [sent] = server.requests  # not followed
    assert sent["body"].encode() == body
    assert sent["headers"]["Content-Type"] == "application/json; charset=utf-8"


def test_a_connections_credentials_stay_under_its_base_url(server):
    scope = credential_scope(f"{server.url}/v1", ["X-Api-Key"])
    headers = {**KEY, "X-Api-Key": "secret"}
    post(f"{server.url}/v1/redirect?to=/v2/x", headers, extensions=scope)
    post(f"{server.url}/v1/redirect?to=/v2/redirect?to=/v1/back", headers, extensions=scope)
    keys = [request["headers"].get("X-Api-Key") for request in server.requests]
    assert keys == ["secret", None, "secret", None, None]


def test_a_redirect_loop_ends_after_the_allowed_hops(server):
    with pytest.raises(httpx.TooManyRedirects):
        post(f"{server.url}/redirect?to=/redirect?to=/redirect?to=/redirect?to=/redirect?to="
             "/redirect?to=/redirect?to=/x", KEY)  # fmt: skip
    assert len(server.requests) == 6  # the first request and five redirects


def test_the_body_is_read_up_to_the_cap_and_that_connection_is_not_kept(server):
    response = safe_request(
        "GET", f"{server.url}/big?bytes=5000", headers=KEY, timeout=5, most_bytes=1000
    )
    assert response.content == b"x" * 1000
    assert len(post(f"{server.url}/a", KEY).content) < 1000
    assert server.requests[0]["port"] != server.requests[1]["port"]


def test_the_request_framing_and_line_breaks_are_not_the_callers(server):
    smuggled = "POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    safe_request("POST", f"{server.url}/a", headers={"Content-Length": "0"}, json=smuggled,
                 timeout=5)  # fmt: skip
    post(f"{server.url}/b", KEY)
    assert [request["path"] for request in server.requests] == ["/a", "/b"]
    with pytest.raises(httpx.LocalProtocolError):
        post(f"{server.url}/c", {"X-Note": "a\r\nX-Injected: 1"})
    assert len(server.requests) == 2


def test_with_tracing_on_the_httpx_client_sends_it_with_the_trace_context(server, monkeypatch):
    monkeypatch.setattr(tracing, "_configured", True)
    provider = TracerProvider()
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    try:
        with provider.get_tracer("test").start_as_current_span("step"):
            post(f"{server.url}/traced", KEY)
    finally:
        HTTPXClientInstrumentor().uninstrument()
        provider.shutdown()
    assert "traceparent" in server.requests[0]["headers"]


def test_an_early_hint_fails_the_call_and_its_final_answer_reaches_no_other_call():
    """http.client returns a 103 as if it were the answer; the 200 after it must not be
    read as the answer to the next request on that connection (another run's)."""
    listener = socket.create_server((ALLOWED, 0))
    answers = [
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nfor-first",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfor-second",
    ]

    def serve() -> None:
        for answer in answers:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.sendall(answer)
            threading.Thread(target=_drain_then_close, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://{ALLOWED}:{listener.getsockname()[1]}"
    with egress_allowed([ALLOWED]), listener:
        with pytest.raises(httpx.RemoteProtocolError, match="informational"):
            safe_request("GET", f"{url}/first", headers={}, timeout=5)
        assert safe_request("GET", f"{url}/second", headers={}, timeout=5).text == "for-second"


def _drain_then_close(connection: socket.socket) -> None:
    """Answer nothing more on a connection, as a server whose answer was sent."""
    with connection:
        connection.settimeout(5)
        while connection.recv(65536):
            pass


def test_a_host_that_does_not_take_the_connection_in_time_is_a_connect_timeout():
    """A listener whose queue is full lets the next connection's SYN go unanswered
    (Linux), so connecting waits until the call's timeout."""
    with socket.create_server((ALLOWED, 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        queued = [socket.socket() for _ in range(3)]
        for waiting in queued:
            waiting.setblocking(False)
            waiting.connect_ex((ALLOWED, port))
        try:
            with egress_allowed([ALLOWED]), pytest.raises(httpx.ConnectTimeout):
                safe_request("GET", f"http://{ALLOWED}:{port}/", headers={}, timeout=0.3)
        finally:
            for waiting in queued:
                waiting.close()
