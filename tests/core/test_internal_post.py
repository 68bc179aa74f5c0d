"""``internal_post_json``: JSON posts to Flowgate's own services (the model service) over a
connection each thread keeps, with httpx's errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

from apps.core.http import internal_post_json
from apps.core.tracing import CORRELATION_ID
from tests.support.processes import free_port


class KeepAliveServer:
    """HTTP/1.1 on loopback: echoes each JSON body with the connection it came on;
    ``close_connections`` closes every open connection from the server's side (what a
    server's keep-alive timeout does); ``/slow`` answers after two seconds."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.open: list[socket.socket] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                server.open.append(self.connection)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                connection = self.client_address[1]
                server.requests.append({"headers": dict(self.headers), "body": body})
                if self.path == "/slow":
                    time.sleep(2)
                payload = json.dumps({"echo": body, "connection": connection}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def close_connections(self) -> None:
        for connection in self.open:
            connection.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def __enter__(self) -> KeepAliveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close_connections()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server():
    with KeepAliveServer() as running:
        yield running


def test_posts_json_with_the_runs_correlation_id_over_one_kept_connection(server):
    token = otel_context.attach(baggage.set_baggage(CORRELATION_ID, "run-42"))
    try:
        first = internal_post_json(f"{server.url}/rows", {"rows": [1]}, timeout=5)
        second = internal_post_json(f"{server.url}/rows", {"rows": [2]}, timeout=5)
    finally:
        otel_context.detach(token)
    assert first.status_code == 200 and first.json()["echo"] == {"rows": [1]}
    assert second.json()["echo"] == {"rows": [2]}
    assert first.json()["connection"] == second.json()["connection"]
    assert server.requests[0]["headers"]["X-Correlation-ID"] == "run-42"
    assert server.requests[0]["headers"]["Content-Type"] == "application/json"


def test_a_kept_connection_the_server_closed_is_reopened_and_the_request_sent_once(server):
    first = internal_post_json(f"{server.url}/rows", {"rows": [1]}, timeout=5)
    server.close_connections()
    second = internal_post_json(f"{server.url}/rows", {"rows": [2]}, timeout=5)
    assert second.json()["echo"] == {"rows": [2]}
    assert second.json()["connection"] != first.json()["connection"]
    assert [request["body"] for request in server.requests] == [{"rows": [1]}, {"rows": [2]}]


def test_a_slow_service_is_a_timeout_and_a_service_not_listening_a_transport_error(server):
    with pytest.raises(httpx.TimeoutException):
        internal_post_json(f"{server.url}/slow", {"rows": []}, timeout=0.3)
    assert internal_post_json(f"{server.url}/rows", {}, timeout=5).status_code == 200
    with pytest.raises(httpx.TransportError):
        internal_post_json(f"http://127.0.0.1:{free_port()}/rows", {}, timeout=5)
