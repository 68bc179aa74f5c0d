"""A tiny OpenAI-compatible server on loopback, standing in for an OUTSIDE provider (a
hosted API) in tests of the ``llm_openai`` connection. The model-service path is never
tested against this: it runs the real BentoML service (``model_stack.py``)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OpenAIProvider:
    """Answers ``POST /chat/completions`` with the next of ``answers`` (the last repeats):
        a string is the assistant's content, an int an error status, a list the
        assistant's tool calls ([(name, arguments)]). ``GET /models`` lists one
        model. Requests whose bearer key is not ``key`` get 401. Each answer comes after
    ``delay`` seconds. Records each request."""

    def __init__(self, answers: list[Any], key: str = "sk-test", delay: float = 0) -> None:
        self.answers, self.key, self.delay = list(answers), key, delay
        self.requests: list[dict[str, Any]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # The client may have given up waiting (a timeout test).
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {provider.key}":
                    return True
                self._send(401, {"error": {"message": "invalid api key"}})
                return False

            def do_GET(self) -> None:
                if self._authorised():
                    self._send(200, {"object": "list", "data": [{"id": "outside-model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                provider.requests.append({"headers": dict(self.headers), "body": body})
                if not self._authorised():
                    return
                time.sleep(provider.delay)
                answer = (
                    provider.answers.pop(0) if len(provider.answers) > 1 else provider.answers[0]
                )
                if isinstance(answer, int):
                    self._send(answer, {"error": {"message": f"provider error {answer}"}})
                    return
                message: dict[str, Any] = {"role": "assistant", "content": answer}
                if isinstance(answer, list):
                    message["content"] = None
                    message["tool_calls"] = [
                        {
                            "id": f"call_{index}",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)},
                        }
                        for index, (name, arguments) in enumerate(answer)
                    ]
                self._send(
                    200,
                    {
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": message,
                                "finish_reason": "tool_calls"
                                if isinstance(answer, list)
                                else "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    },
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
