"""The MCP endpoint (``/mcp``, streamable HTTP): published flows as tools for outside agents.

Built on the official MCP Python SDK (``mcp``): its low-level ``Server`` answers
``tools/list`` and ``tools/call``, its ``StreamableHTTPSessionManager`` speaks the transport,
stateless and with JSON answers, so any web process can answer any request (no session
affinity behind a load balancer). ``studio/asgi.py`` sends ``/mcp`` here, past Django.

Every request carries a workspace API token (``Authorization: Bearer fg_...``, the tokens of
Settings → API tokens): none or a bad one is a 401 before the SDK sees the request. The
token decides the workspace and the caller; ``services.tool_call`` does the rest (role,
read-only tokens, input schema, the ``mcp_tool_call`` gate, the run). Django's ORM is
synchronous: every read and write runs on a worker thread. The SDK's side (the MCP
server and its handlers) is in ``protocol.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host

from apps.accounts.models import ApiToken
from apps.accounts.services import TokenRejected, api_token_authenticate
from apps.core.ratelimit import hit

PATH = "/mcp"
TOKEN_SCOPE_KEY = "flowgate.api_token"  # noqa: S105 (a key in the ASGI scope, not a secret)


def in_thread(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``function`` on a worker thread, with the connection hygiene of a Django request."""

    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)


def _authenticate(secret: str) -> tuple[ApiToken, int | None]:
    """The token, and the seconds to wait when it is over the REST API's rate limit (the
    ``api`` scope, per token: an agent's calls count with its other API requests)."""
    token = api_token_authenticate(secret)
    return token, hit(scope="api", key=f"token:{token.pk}")


class McpEndpoint:
    """The ASGI app behind ``/mcp``: host check, bearer token, then the SDK's transport.
    The SDK's session manager needs a running task group; it starts with the first request
    (the studio runs uvicorn without a lifespan) and lives as long as the event loop."""

    def __init__(self) -> None:
        self._manager: Any = None  # the SDK's StreamableHTTPSessionManager, once started
        self._running: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        host, _port = split_domain_port(headers.get("host", ""))
        if not host or not validate_host(host, settings.ALLOWED_HOSTS):
            await _answer(send, 400, {"error": "this host is not served here"})
            return
        if scope["method"] != "POST":
            # Stateless: no session to end (DELETE) and no server-initiated messages, so no
            # stream to hold open (GET); the transport's answer for that is a 405.
            allow = [(b"allow", b"POST")]
            await _answer(send, 405, {"error": "this endpoint takes POST requests"}, allow)
            return
        authorization = headers.get("authorization", "")
        if not authorization.lower().startswith("bearer "):
            await _unauthorized(
                send, "Authentication required: send 'Authorization: Bearer <API token>'."
            )
            return
        try:
            token, retry_after = await in_thread(_authenticate)(authorization[7:].strip())
        except TokenRejected as rejected:
            await _unauthorized(send, str(rejected))
            return
        if retry_after is not None:
            extra = [(b"retry-after", str(retry_after).encode())]
            await _answer(send, 429, {"error": "too many requests with this token"}, extra)
            return
        manager = await self._started()
        await manager.handle_request({**scope, TOKEN_SCOPE_KEY: token}, receive, send)

    async def _started(self) -> Any:
        async with self._lock:
            if self._running is None:
                # The SDK is imported here, not at start-up: a web process that never
                # answers /mcp does not pay for it (about a second).
                from .protocol import session_manager

                self._manager = session_manager()
                self._running = asyncio.get_running_loop().create_task(self._run(self._manager))
        await self._ready.wait()
        assert self._manager is not None
        return self._manager

    async def _run(self, manager: Any) -> None:
        async with manager.run():
            self._ready.set()
            await asyncio.Event().wait()  # until the loop ends


async def _answer(send: Any, status: int, body: dict[str, Any], extra: list | None = None) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": payload})


async def _unauthorized(send: Any, message: str) -> None:
    await _answer(
        send, 401, {"error": message}, [(b"www-authenticate", b'Bearer realm="flowgate"')]
    )


def with_mcp(application: Any) -> Any:
    """``application`` (Django's HTTP app) with ``/mcp`` answered by the MCP endpoint."""
    endpoint = McpEndpoint()

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == PATH:
            await endpoint(scope, receive, send)
        else:
            await application(scope, receive, send)

    return route
