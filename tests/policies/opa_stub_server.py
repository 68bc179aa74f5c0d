"""A small OPA-compatible server for tests: the REST endpoints opa-python-client uses, with
regorus behind them. Run it as a process: ``python opa_stub_server.py PORT``.

Implemented: ``PUT/GET/DELETE /v1/policies/{id}`` (Policy API), ``POST /v1/data/{path}``
with ``{"input": ...}`` (Data API: ``{"result": value}``, or ``{}`` when undefined) and
``GET /health``. Errors use OPA's shape: ``{"code": ..., "message": ..., "errors": [...]}``.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import regorus

MODULES: dict[str, str] = {}
GENERATION = [0]
LOCK = threading.Lock()
LOCAL = threading.local()


def plain(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(
            (plain(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True)
        )
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def build_engine(modules: dict[str, str]) -> Any:
    engine = regorus.Engine()
    for policy_id, source in modules.items():
        engine.add_policy(f"{policy_id}.rego", source)
    return engine


def thread_engine() -> Any:
    """regorus engines may only be used on the thread that made them: one per thread,
    rebuilt when the loaded policies change."""
    with LOCK:
        generation, modules = GENERATION[0], dict(MODULES)
    if getattr(LOCAL, "generation", None) != generation:
        LOCAL.engine, LOCAL.generation = build_engine(modules), generation
    return LOCAL.engine


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every keep-alive request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/health":
            self._answer(200, {})
        elif self.path.startswith("/v1/policies/"):
            policy_id = self.path[len("/v1/policies/") :]
            if policy_id in MODULES:
                self._answer(200, {"result": {"id": policy_id, "raw": MODULES[policy_id]}})
            else:
                self._answer(
                    404,
                    {
                        "code": "resource_not_found",
                        "message": f"storage_not_found_error: policy id {policy_id!r}",
                    },
                )
        else:
            self._answer(404, {"code": "resource_not_found", "message": "not found"})

    def do_PUT(self) -> None:
        if not self.path.startswith("/v1/policies/"):
            self._answer(404, {"code": "resource_not_found", "message": "not found"})
            return
        policy_id = self.path[len("/v1/policies/") :]
        source = self._body().decode()
        with LOCK:
            candidate = {**MODULES, policy_id: source}
        try:
            build_engine(candidate)
        except RuntimeError as error:
            message = str(error).split("Stack backtrace:")[0].strip()
            self._answer(
                400,
                {
                    "code": "invalid_parameter",
                    "message": "error(s) occurred while compiling module(s)",
                    "errors": [{"code": "rego_parse_error", "message": message}],
                },
            )
            return
        with LOCK:
            MODULES[policy_id] = source
            GENERATION[0] += 1
        self._answer(200, {})

    def do_DELETE(self) -> None:
        policy_id = self.path[len("/v1/policies/") :]
        with LOCK:
            found = MODULES.pop(policy_id, None) is not None
            GENERATION[0] += 1
        if found:
            self._answer(200, {})
        else:
            self._answer(404, {"code": "resource_not_found", "message": f"policy id {policy_id!r}"})

    def do_POST(self) -> None:
        if not self.path.startswith("/v1/data/"):
            self._answer(404, {"code": "resource_not_found", "message": "not found"})
            return
        path = self.path[len("/v1/data/") :].split("?")[0].strip("/").replace("/", ".")
        try:
            document = json.loads(self._body() or b"{}")
        except ValueError:
            self._answer(400, {"code": "invalid_parameter", "message": "body is not JSON"})
            return
        engine = thread_engine()
        try:
            engine.set_input(document.get("input", {}))
            value = engine.eval_rule(f"data.{path}")
        except RuntimeError as error:
            message = str(error).split("Stack backtrace:")[0].strip()
            if "not a valid rule path" in message:
                self._answer(200, {})
                return
            self._answer(500, {"code": "internal_error", "message": message})
            return
        self._answer(200, {} if value is None else {"result": plain(value)})


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
