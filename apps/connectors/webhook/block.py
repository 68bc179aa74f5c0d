"""connector.webhook.out: POST a signed JSON event to a receiver, through the SSRF guard.

The connection's signing secret signs requests to the connection's URL only: a block may
add a path or query under it, never point the signed request at another origin (a builder
could otherwise have any payload signed and sent to a host they choose).

Every attempt carries the same ``Idempotency-Key`` and ``X-Event-Id`` (hash of run and
node), so receivers drop a retry; the signature is fresh per attempt (it is time-bound)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import Field

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import Expression, Template
from apps.core.http import SSRFError, egress_allowed, safe_request

from ..types import connection_reference
from .signing import signed_headers

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
DEFAULT_PORTS = {"http": 80, "https": 443}


def url_is_under(url: str, base: str) -> bool:
    """``url`` has ``base``'s scheme, host and port, and a path at or below ``base``'s."""
    try:
        target, root = urlsplit(url), urlsplit(base)
        ports = (
            target.port or DEFAULT_PORTS.get(target.scheme),
            root.port or DEFAULT_PORTS.get(root.scheme),
        )
    except ValueError:
        return False
    if (target.scheme, (target.hostname or "").lower()) != (
        root.scheme,
        (root.hostname or "").lower(),
    ) or ports[0] != ports[1]:
        return False
    prefix = root.path.rstrip("/")
    path = target.path or "/"
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return False  # the client would resolve it to a path outside the prefix
    return path == prefix or path.startswith(prefix + "/") or not prefix


class WebhookOutConfig(BlockConfig):
    connection: str = Field(
        description="An outgoing webhook connection (URL + signing secret).",
        json_schema_extra=connection_reference("webhook"),
    )
    url: Template | None = Field(
        default=None,
        description="A URL under the connection's URL (same origin, path below it); the "
        "signing secret is never sent elsewhere.",
    )
    event: Template = Field(default="flow.event", description="The event type sent as 'type'.")
    payload: dict[str, Expression] | Expression = Field(description="Sent as 'data'.")
    timeout_seconds: float = Field(default=10, gt=0, le=60)


class WebhookOutBlock(Block):
    """POST a signed JSON event (Standard Webhooks headers) to a webhook receiver."""

    key = "connector.webhook.out"
    title = "Send webhook"
    category = "connector"
    calls_out = True
    icon = "webhook"
    Config = WebhookOutConfig
    side_effect = True
    idempotent = True  # same Idempotency-Key / X-Event-Id on every attempt
    max_attempts = 5

    def execute(self, ctx: BlockContext, config: WebhookOutConfig, input: Any) -> Result:
        connection = ctx.service("connections").get(config.connection, type="webhook")
        url = ctx.render(config.url) if config.url else connection.config.url
        if not url_is_under(url, connection.config.url):
            raise BlockError(
                f"refused: {url} is not under the connection's URL {connection.config.url}; "
                "its signing secret signs requests to that URL only",
                retryable=False,
            )
        event = {
            "id": ctx.idempotency_key,
            "type": ctx.render(config.event),
            "data": ctx.evaluate_tree(config.payload),
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": ctx.idempotency_key,
            "X-Event-Id": ctx.idempotency_key,
            "X-Correlation-ID": ctx.correlation_id,
        }
        if ctx.dry_run:
            shown = {"dry_run": True, "url": url, "headers": headers, "event": event}
            return Result(output=shown, meta={"dry_run": True})
        headers.update(
            signed_headers(
                connection.secret("signing_secret"), message_id=ctx.idempotency_key, body=body
            )
        )
        allowlist = ctx.service("connections").egress_allowlist()
        try:
            # No redirects: the signature is for the connection's URL, never for where a
            # receiver points us next.
            with egress_allowed(allowlist):
                response = safe_request(
                    "POST",
                    url,
                    headers=headers,
                    content=body,
                    timeout=config.timeout_seconds,
                    follow_redirects=False,
                )
        except SSRFError as error:
            raise BlockError(f"refused: {error}", retryable=False) from None
        except httpx.TimeoutException:
            raise BlockError(f"{url} did not answer in time", retryable=True) from None
        except httpx.RequestError as error:
            raise BlockError(f"could not reach {url}: {error}", retryable=True) from None
        if response.status_code >= 300:
            raise BlockError(
                f"the receiver answered {response.status_code}",
                retryable=response.status_code in RETRYABLE_STATUS,
                details={"status": response.status_code},
            )
        return Result(
            output={"status": response.status_code, "event_id": event["id"]},
            meta={"status": response.status_code, "url": url},
        )
