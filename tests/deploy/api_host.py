"""The far end of the multi-host test's side effects, run inside its own test host:
``python tests/deploy/api_host.py ADDRESS PORT LOG``. Every request is appended to LOG as a
JSON line (client address, path, Idempotency-Key, body) before it is answered, so the test
sees which worker host made each call. ``/charge`` takes 0.2 s, ``/slow?seconds=N`` N s."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()


def main(address: str, port: int, log_path: str) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            record = {
                "client": self.client_address[0],
                "path": self.path,
                "key": self.headers.get("Idempotency-Key"),
                "body": body,
            }
            with LOCK, open(log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
            parts = urlsplit(self.path)
            if parts.path == "/slow":
                time.sleep(float(parse_qs(parts.query).get("seconds", ["3"])[0]))
            elif parts.path == "/charge":
                time.sleep(0.2)
            payload = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET

    ThreadingHTTPServer((address, port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
