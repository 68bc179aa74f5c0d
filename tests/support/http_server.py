"""A real HTTP server on loopback that counts requests: the far end of side effects."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingServer:
    """Answers every request with ``status`` (or the next of ``statuses``) and a JSON
    echo; records each request (with the client's ``port``: one per connection).
    ``/redirect?to=URL`` answers 302 to URL (``/redirect-307?to=URL``: 307; under any path,
    ``/v1/redirect?to=URL``);
    ``/slow?seconds=N`` answers after N seconds; ``/hold`` answers once ``release`` is set
    (``holding`` and ``most_held`` count such requests in progress, now and at most);
    ``/set-cookie`` answers with a ``Set-Cookie: session=secret`` header; ``/big?bytes=N``
    with N bytes of text. ``keep_alive``: HTTP/1.1, connections kept open between
    requests until ``close_connections()`` (what a server's idle timeout does)."""

    def __init__(
        self,
        statuses: list[int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_alive: bool = False,
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.open: list[socket.socket] = []
        self.statuses = list(statuses or [])
        self.release = threading.Event()
        self.holding = self.most_held = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                server.open.append(self.connection)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "port": self.client_address[1],
                    }
                )
                if self.path.startswith("/slow"):
                    import time

                    time.sleep(
                        float(self.path.split("seconds=")[-1]) if "seconds=" in self.path else 3
                    )
                if self.path.startswith("/hold"):
                    server._hold()
                where = self.path.split("?")[0]
                if where.endswith(("/redirect", "/redirect-307")) and "?to=" in self.path:
                    self.send_response(307 if where.endswith("-307") else 302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.startswith("/big?bytes="):
                    size = int(self.path.split("=", 1)[1])
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(size))
                    self.end_headers()
                    self.wfile.write(b"x" * size)
                    return
                status = server.statuses.pop(0) if server.statuses else 200
                payload = json.dumps({"ok": status < 400, "count": len(server.requests)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if self.path.startswith("/set-cookie"):
                    self.send_header("Set-Cookie", "session=secret; Path=/")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _hold(self) -> None:
        with self._lock:
            self.holding += 1
            self.most_held = max(self.most_held, self.holding)
        self.release.wait(timeout=30)
        with self._lock:
            self.holding -= 1

    def close_connections(self) -> None:
        for connection in self.open:
            with contextlib.suppress(OSError):  # closed already
                connection.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.close_connections()
        self._server.shutdown()
        self._server.server_close()
