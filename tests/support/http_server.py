"""A real HTTP server on loopback that counts requests: the far end of side effects."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CountingServer:
    """Answers every request with ``status`` (or the next of ``statuses``) and a JSON
    echo; records each request. ``/redirect?to=URL`` answers 302 to URL; ``/slow?seconds=N``
    answers after N seconds; ``/hold`` answers once ``release`` is set (``holding`` and
    ``most_held`` count such requests in progress, now and at most); ``/set-cookie``
    answers with a ``Set-Cookie: session=secret`` header."""

    def __init__(
        self, statuses: list[int] | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self.release = threading.Event()
        self.holding = self.most_held = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if self.path.startswith("/slow"):
                    import time

                    time.sleep(
                        float(self.path.split("seconds=")[-1]) if "seconds=" in self.path else 3
                    )
                if self.path.startswith("/hold"):
                    server._hold()
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.end_headers()
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

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
