"""The ``webhook`` connection type: where signed webhooks go and the secret they are
signed with."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import httpx
from pydantic import Field

from apps.core.http import SSRFError, safe_client

from ..http.connection import _request_failure
from ..types import ConnectionConfig, ConnectionType, SecretField, TestOutcome
from .signing import signed_headers


class WebhookConfig(ConnectionConfig):
    url: str = Field(
        pattern=r"^https?://\S+$", description="Receiver URL; a block may override it."
    )


class WebhookConnection(ConnectionType):
    key = "webhook"
    title = "Outgoing webhook"
    description = (
        "A receiver of signed JSON webhooks (Standard Webhooks: webhook-id, webhook-timestamp, "
        "webhook-signature), signed with this connection's secret and sent only to its URL."
    )
    Config = WebhookConfig
    secret_fields = (
        SecretField("signing_secret", "Signing secret", "Shared with the receiver.", required=True),
    )

    @classmethod
    def test(cls, config: WebhookConfig, secrets: Mapping[str, str]) -> TestOutcome:
        """Sends a signed ``ping`` event; a receiver answering 2xx verified it."""
        body = json.dumps({"type": "ping"}).encode()
        headers = {
            "Content-Type": "application/json",
            **signed_headers(
                secrets.get("signing_secret", ""), message_id=f"ping_{uuid.uuid4().hex}", body=body
            ),
        }
        try:
            with safe_client(timeout=10) as client:
                response = client.post(config.url, content=body, headers=headers)
        except SSRFError as error:
            return TestOutcome(False, "refused", f"refused by the SSRF guard: {error}")
        except httpx.TimeoutException:
            return TestOutcome(False, "timeout", f"{config.url} did not answer in time")
        except httpx.RequestError as error:
            return _request_failure(config.url, error)
        if response.status_code in (401, 403):
            return TestOutcome(
                False,
                "auth",
                f"authentication failed: the receiver refused the signature ({response.status_code})",
            )
        if response.status_code >= 400:
            return TestOutcome(False, "error", f"the receiver answered {response.status_code}")
        return TestOutcome(
            True, "ok", f"ping accepted: {config.url} answered {response.status_code}"
        )
