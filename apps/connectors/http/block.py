"""connector.http: call an HTTP API, with the SSRF guard, retries and idempotency."""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import httpx
from pydantic import Field

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import Expression, Template
from apps.core.http import SSRFError, safe_client

from ..types import connection_reference
from .connection import AuthFailure, auth_headers, resolve_url

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


_client: tuple[int, httpx.Client] | None = None


def shared_client() -> httpx.Client:
    """One guarded client per process (made after a worker forks), shared by the I/O
    layer's threads: building a client costs milliseconds of CPU (its TLS context), more
    than a call to a nearby API, and a shared one keeps connections alive between calls.
    The guard runs on every request (and redirect) all the same."""
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), safe_client())
    return _client[1]


class HttpConfig(BlockConfig):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Template = Field(
        description="The URL; {{ expressions }} are filled in. Relative to the connection's "
        "base URL when it does not start with http(s)://."
    )
    headers: dict[str, Template] = Field(default_factory=dict)
    query: dict[str, Expression] = Field(default_factory=dict, description="Query parameters.")
    body: dict[str, Expression] | Expression | None = Field(
        default=None, description="JSON body: an object of expressions, or one expression."
    )
    connection: str | None = Field(
        default=None,
        description="An HTTP API connection that supplies auth (and a base URL).",
        json_schema_extra=connection_reference("http_api"),
    )
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    success_codes: list[int] = Field(default_factory=lambda: list(range(200, 300)))


class HttpBlock(Block):
    """Call an HTTP API (SSRF-guarded), with auth from a connection."""

    key = "connector.http"
    title = "HTTP request"
    category = "connector"
    calls_out = True
    icon = "globe"
    Config = HttpConfig
    ports = ("out",)
    side_effect = True
    idempotent = True  # sends Idempotency-Key = hash(run, node) on every attempt
    max_attempts = 3

    def execute(self, ctx: BlockContext, config: HttpConfig, input: Any) -> Result:
        request = self._request(ctx, config)
        if ctx.dry_run:
            shown = _visible(request, request.pop("connection_headers", ()))
            return Result(
                output={"dry_run": True, "request": shown}, meta={"dry_run": True, "request": shown}
            )
        request.pop("connection_headers", None)
        try:
            response = shared_client().request(**request, timeout=config.timeout_seconds)
        except SSRFError as error:
            raise BlockError(f"refused: {error}", retryable=False) from None
        except httpx.TimeoutException:
            raise BlockError(
                f"{request['url']} did not answer within {config.timeout_seconds:g} s",
                retryable=True,
            ) from None
        except httpx.RequestError as error:
            raise BlockError(f"could not reach {request['url']}: {error}", retryable=True) from None
        return self._result(config, request, response)

    def _request(self, ctx: BlockContext, config: HttpConfig) -> dict[str, Any]:
        headers = {name: ctx.render(value) for name, value in config.headers.items()}
        headers["Idempotency-Key"] = ctx.idempotency_key
        headers["X-Correlation-ID"] = ctx.correlation_id
        connection, supplied = None, {}
        if config.connection:
            connection = ctx.service("connections").get(config.connection, type="http_api")
            try:
                supplied = auth_headers(connection)
            except AuthFailure as failure:
                raise BlockError(
                    f"connection {config.connection!r}: {failure.message}",
                    retryable=failure.retryable,
                ) from None
            headers.update(supplied)
        request: dict[str, Any] = {
            "method": config.method,
            "url": resolve_url(connection, ctx.render(config.url)),
            "headers": headers,
            "connection_headers": tuple(supplied),
        }
        if config.query:  # an empty params= would drop the URL's own query string
            values = ctx.evaluate_tree(dict(config.query))
            request["params"] = {key: _text(value) for key, value in values.items()}
        if config.body is not None:
            request["json"] = ctx.evaluate_tree(config.body)
        return request

    def _result(
        self, config: HttpConfig, request: dict[str, Any], response: httpx.Response
    ) -> Result:
        body = _decode(response)
        output = {"status": response.status_code, "headers": dict(response.headers), "body": body}
        if response.status_code not in config.success_codes:
            raise BlockError(
                f"{config.method} {request['url']} answered {response.status_code}",
                retryable=response.status_code in RETRYABLE_STATUS,
                details={"status": response.status_code, "body": body},
            )
        return Result(
            output=output,
            meta={
                "status": response.status_code,
                "elapsed_ms": response.elapsed.total_seconds() * 1000,
            },
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _decode(response: httpx.Response) -> Any:
    content = response.content[:MAX_RESPONSE_BYTES]
    if "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(content)
        except ValueError:
            pass
    return content.decode(response.encoding or "utf-8", errors="replace")


def _visible(request: dict[str, Any], connection_headers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request as a person may see it: auth headers masked, including headers a
    connection supplied under any name."""
    from apps.audit.redaction import MASK, redact

    visible = redact(request)
    for name in connection_headers:
        if name in visible.get("headers", {}):
            visible["headers"][name] = MASK
    return visible
