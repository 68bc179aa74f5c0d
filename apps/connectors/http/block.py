"""connector.http: call an HTTP API, with the SSRF guard, retries and idempotency."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import Field

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import Expression, Template
from apps.core.http import SSRFError, credential_scope, egress_allowed, safe_request

from ..types import connection_reference
from .connection import AuthFailure, auth_headers, resolve_url, scope_problem, static_scope_problem

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


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

    @classmethod
    def workspace_problems(
        cls, config: HttpConfig, service: Callable[[str], Any]
    ) -> list[tuple[str, str]]:
        if not config.connection:
            return []
        try:
            connection = service("connections").get(config.connection, type="http_api")
        except BlockError:
            return []  # a missing connection is reported when the step runs
        problem = static_scope_problem(connection.config, config.url)
        return [("url", problem)] if problem else []

    def execute(self, ctx: BlockContext, config: HttpConfig, input: Any) -> Result:
        connections = ctx.service("connections")
        with egress_allowed(connections.egress_allowlist()):
            request, scope = self._request(ctx, config, connections)
            if ctx.dry_run:
                shown = _visible(request, scope[1] if scope else ())
                return Result(
                    output={"dry_run": True, "request": shown},
                    meta={"dry_run": True, "request": shown},
                )
            return self._send(config, request, scope)

    def _send(
        self, config: HttpConfig, request: dict[str, Any], scope: tuple[str, tuple[str, ...]] | None
    ) -> Result:
        try:
            response = safe_request(
                **request,
                timeout=config.timeout_seconds,
                extensions=credential_scope(*scope) if scope else None,
                most_bytes=MAX_RESPONSE_BYTES,
            )
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

    def _request(
        self, ctx: BlockContext, config: HttpConfig, connections: Any
    ) -> tuple[dict[str, Any], tuple[str, tuple[str, ...]] | None]:
        """The request to send, and the credential scope (base URL, the header names the
        connection added) when a connection is used. A URL outside the connection's base
        URL is refused here, before any credential is fetched or sent."""
        headers = {name: ctx.render(value) for name, value in config.headers.items()}
        headers["Idempotency-Key"] = ctx.idempotency_key
        headers["X-Correlation-ID"] = ctx.correlation_id
        connection = (
            connections.get(config.connection, type="http_api") if config.connection else None
        )
        url = resolve_url(connection, ctx.render(config.url))
        scope = None
        if connection is not None:
            problem = scope_problem(connection.config, url)
            if problem:
                raise BlockError(f"connection {config.connection!r}: {problem}", retryable=False)
            try:
                supplied = auth_headers(connection)
            except AuthFailure as failure:
                raise BlockError(
                    f"connection {config.connection!r}: {failure.message}",
                    retryable=failure.retryable,
                ) from None
            # A header the step sets under the same name as the connection's would be
            # overwritten here; the connection's value (its credential) wins.
            headers.update(supplied)
            scope = (connection.config.base_url, tuple(supplied))
        request: dict[str, Any] = {"method": config.method, "url": url, "headers": headers}
        if config.query:  # an empty params= would drop the URL's own query string
            values = ctx.evaluate_tree(dict(config.query))
            request["params"] = {key: _text(value) for key, value in values.items()}
        if config.body is not None:
            request["json"] = ctx.evaluate_tree(config.body)
        return request, scope

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
