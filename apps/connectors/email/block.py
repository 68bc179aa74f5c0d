"""connector.email.send: send an email through an SMTP connection.

The Message-ID is derived from the step's idempotency key (hash of run and node), so a
copy sent twice is recognisable as the same message. SMTP cannot refuse a duplicate, so
the block is not idempotent: a crash mid-send marks the step in doubt for a person
rather than sending again."""

from __future__ import annotations

import base64
import binascii
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import Expression, Template

from ..types import connection_reference
from . import client

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: Template
    content: Expression = Field(description="CEL giving the content (text, or base64).")
    encoding: Literal["text", "base64"] = "text"
    content_type: str = Field(default="text/plain", pattern=r"^[\w.+-]+/[\w.+-]+$")


class EmailSendConfig(BlockConfig):
    connection: str = Field(
        description="An SMTP connection.", json_schema_extra=connection_reference("smtp")
    )
    to: list[Template] = Field(
        min_length=1, description="Recipients; each may hold several, comma-separated."
    )
    cc: list[Template] = Field(default_factory=list)
    bcc: list[Template] = Field(default_factory=list)
    reply_to: Template | None = None
    subject: Template
    text: Template = Field(description="Plain-text body.")
    html: Template | None = Field(default=None, description="Optional HTML body.")
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


def _addresses(ctx: BlockContext, values: list[str]) -> list[str]:
    rendered = [ctx.render(value) for value in values]
    for value in rendered:
        if "\r" in value or "\n" in value:
            raise BlockError(f"a recipient contains a line break: {value!r}", retryable=False)
    found = [address for _, address in getaddresses(rendered) if address]
    for address in found:
        if "@" not in address or any(char in address for char in "\r\n"):
            raise BlockError(f"{address!r} is not an email address", retryable=False)
    return found


def _attachment_bytes(ctx: BlockContext, attachment: Attachment) -> tuple[str, bytes]:
    name = ctx.render(attachment.filename)
    value = ctx.evaluate(attachment.content)
    if attachment.encoding == "base64":
        try:
            return name, base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise BlockError(f"attachment {name!r} is not valid base64", retryable=False) from None
    return name, (value if isinstance(value, str) else str(value)).encode()


def _message_id(ctx: BlockContext, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "flowgate.invalid"
    return f"<{ctx.idempotency_key}@{domain}>"


class EmailSendBlock(Block):
    """Send an email (text and HTML from templates, attachments from run data) over SMTP."""

    key = "connector.email.send"
    title = "Send email"
    category = "connector"
    calls_out = True
    icon = "mail"
    Config = EmailSendConfig
    side_effect = True
    idempotent = False  # SMTP cannot drop a duplicate: a crash mid-send is flagged in doubt
    max_attempts = 3  # only failures where the server certainly did not take it are retried

    def execute(self, ctx: BlockContext, config: EmailSendConfig, input: Any) -> Result:
        connection = ctx.service("connections").get(config.connection, type="smtp")
        message, summary = self._message(ctx, config, connection.config.from_address)
        if ctx.dry_run:
            return Result(output={"dry_run": True, **summary}, meta={"dry_run": True})
        try:
            refused = client.send(connection.config, connection.secrets, message)
        except client.SmtpFailure as failure:
            raise BlockError(
                f"email not sent ({failure.stage}): {failure.message}",
                retryable=failure.retryable,
                details={"stage": failure.stage, "message_id": summary["message_id"]},
            ) from None
        return Result(
            output={"message_id": summary["message_id"], "to": summary["to"], "refused": refused},
            meta={"message_id": summary["message_id"], "recipients": len(summary["recipients"])},
        )

    def _message(
        self, ctx: BlockContext, config: EmailSendConfig, sender: str
    ) -> tuple[EmailMessage, dict[str, Any]]:
        to, cc, bcc = (_addresses(ctx, values) for values in (config.to, config.cc, config.bcc))
        if not to:
            raise BlockError("the email has no recipient", retryable=False)
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        if config.reply_to:
            message["Reply-To"] = ctx.render(config.reply_to)
        subject = ctx.render(config.subject).replace("\r", " ").replace("\n", " ")
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message_id = _message_id(ctx, sender)
        message["Message-ID"] = message_id
        message["X-Flowgate-Idempotency-Key"] = ctx.idempotency_key
        message["X-Correlation-ID"] = ctx.correlation_id
        text = ctx.render(config.text)
        message.set_content(text)
        html = ctx.render(config.html) if config.html else None
        if html:
            message.add_alternative(html, subtype="html")
        files = [(_attachment_bytes(ctx, item), item.content_type) for item in config.attachments]
        if sum(len(data) for (_, data), _ in files) > MAX_ATTACHMENT_BYTES:
            raise BlockError("attachments exceed 10 MB in total", retryable=False)
        for (name, data), content_type in files:
            maintype, subtype = content_type.split("/", 1)
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        if bcc:
            # smtplib sends to Bcc addresses and strips the header from what it transmits.
            message["Bcc"] = ", ".join(bcc)
        summary = {
            "message_id": message_id,
            "from": sender,
            "to": to,
            "cc": cc,
            "bcc": bcc,
            "recipients": [*to, *cc, *bcc],
            "subject": subject,
            "text": text,
            "html": html,
            "attachments": [
                {"filename": name, "content_type": content_type, "bytes": len(data)}
                for (name, data), content_type in files
            ],
        }
        return message, summary
