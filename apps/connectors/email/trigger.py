"""trigger.email: start the flow when an inbound-mail service posts an email to the flow's
webhook URL (see inbound.py for the shapes it reads)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apps.blocks.base import (
    Activation,
    Block,
    BlockConfig,
    BlockContext,
    BlockError,
    FlowAddress,
    Result,
)

from .inbound import InboundEmailError, parse_inbound


class EmailTriggerConfig(BlockConfig):
    auth: Literal["token", "hmac"] = Field(
        default="token",
        description=(
            "token: the secret URL is enough; hmac: also require a Standard Webhooks "
            "signature made with the flow's signing secret (the flow's Webhook page)."
        ),
    )


class EmailTrigger(Block):
    """Start the flow for each inbound email posted to its webhook URL (JSON or form)."""

    key = "trigger.email"
    title = "Inbound email"
    category = "trigger"
    icon = "mail"
    Config = EmailTriggerConfig

    @classmethod
    def activation(cls, config: EmailTriggerConfig, flow: FlowAddress) -> Activation:
        # Delivered by an inbound-mail service to the flow's webhook URL, always async.
        return Activation("webhook", flow.webhook_token, {"auth": config.auth, "mode": "async"})

    def execute(self, ctx: BlockContext, config: EmailTriggerConfig, input: Any) -> Result:
        try:
            message = parse_inbound(input if isinstance(input, dict) else {"body": input})
        except InboundEmailError as error:
            raise BlockError(str(error), retryable=False) from None
        delivery = {
            key: value for key, value in (input or {}).items() if key not in ("body", "raw")
        }
        return Result(output={**delivery, "body": message})
