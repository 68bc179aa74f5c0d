"""connector.webhook.out: POST a signed JSON event to a receiver, through the SSRF guard.

Every attempt carries the same ``Idempotency-Key`` and ``X-Event-Id`` (hash of run and
node), so receivers drop a retry; the signature is fresh per attempt (it is time-bound)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import Field

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import Expression, Template
from apps.core.http import SSRFError, safe_client

from ..types import connection_reference
from .signing import SIGNATURE_HEADER, signature

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class WebhookOutConfig(BlockConfig):
    connection: str = Field(
        description="An outgoing webhook connection (URL + signing secret).",
        json_schema_extra=connection_reference("webhook"),
    )
    url: Template | None = Field(default=None, description="Overrides the connection's URL.")
    event: Template = Field(default="flow.event", description="The event type sent as 'type'.")
    payload: dict[str, Expression] | Expression = Field(description="Sent as 'data'.")
    timeout_seconds: float = Field(default=10, gt=0, le=60)


class WebhookOutBlock(Block):
    """POST a signed JSON event (HMAC-SHA256 header) to a webhook receiver."""

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
        headers[SIGNATURE_HEADER] = signature(connection.secret("signing_secret"), body)
        try:
            with safe_client(timeout=config.timeout_seconds) as client:
                response = client.post(url, content=body, headers=headers)
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
