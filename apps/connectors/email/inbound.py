"""Inbound email delivered as a webhook, normalised for ``trigger.email``.

Accepted shapes: JSON (Postmark-style ``From``/``TextBody``/``Attachments`` or plain
``from``/``text``/``attachments``) and form posts (SendGrid / Mailgun style fields, urlencoded
or multipart). Every shape becomes ``{from, from_name, to, cc, subject, text, html,
message_id, attachments: [{filename, content_type, size, content (base64 or null)}]}``.
"""

from __future__ import annotations

import base64
import binascii
import email
from email import policy
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.parse import parse_qs


class InboundEmailError(ValueError):
    pass


def _first(source: dict[str, Any], *names: str) -> Any:
    for name in names:
        if source.get(name) not in (None, ""):
            return source[name]
    return None


def _addresses(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        value = ", ".join(
            str(item.get("Email", "")) if isinstance(item, dict) else str(item) for item in value
        )
    return [address for _, address in getaddresses([str(value)]) if address]


def _attachment(item: dict[str, Any]) -> dict[str, Any]:
    content = _first(item, "Content", "content")
    size = _first(item, "ContentLength", "size")
    if content is not None and size is None:
        try:
            size = len(base64.b64decode(str(content), validate=True))
        except (binascii.Error, ValueError):
            size = None
    return {
        "filename": _first(item, "Name", "filename", "name") or "attachment",
        "content_type": _first(item, "ContentType", "content_type", "type")
        or "application/octet-stream",
        "size": size,
        "content": content,
    }


def _normalised(fields: dict[str, Any], attachments: list[dict[str, Any]]) -> dict[str, Any]:
    given = fields.get("FromFull")
    full_from: dict[str, Any] = given if isinstance(given, dict) else {}
    sender = _first(fields, "from", "From", "sender") or full_from.get("Email") or ""
    name, address = parseaddr(str(sender))
    return {
        "from": address,
        "from_name": name or full_from.get("Name") or "",
        "to": _addresses(_first(fields, "to", "To", "ToFull", "recipient")),
        "cc": _addresses(_first(fields, "cc", "Cc", "CcFull")),
        "subject": str(_first(fields, "subject", "Subject") or ""),
        "text": str(
            _first(fields, "text", "TextBody", "body-plain", "plain", "stripped-text") or ""
        ),
        "html": str(_first(fields, "html", "HtmlBody", "body-html") or ""),
        "message_id": str(
            _first(fields, "message_id", "MessageID", "Message-Id", "message-id") or ""
        ),
        "attachments": attachments,
    }


def _multipart(body: str, content_type_header: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if "boundary=" not in content_type_header:
        raise InboundEmailError("a multipart body needs its Content-Type boundary")
    message = email.message_from_string(
        f"Content-Type: {content_type_header}\r\n\r\n{body}", policy=policy.default
    )
    fields: dict[str, Any] = {}
    attachments = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if part.get_filename():
            # The web layer hands the trigger text, so binary file content does not survive
            # a multipart post: its name, type and size do.
            attachments.append(
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "size": len(payload),
                    "content": None,
                }
            )
        elif name:
            fields[str(name)] = payload.decode("utf-8", errors="replace")
    return fields, attachments


def parse_inbound(delivery: dict[str, Any]) -> dict[str, Any]:
    """The normalised email of a webhook delivery (the run's trigger envelope)."""
    body = delivery.get("body")
    headers = delivery.get("headers") or {}
    content_type = str(delivery.get("content_type") or headers.get("content-type") or "")
    if isinstance(body, dict):
        items = _first(body, "Attachments", "attachments") or []
        return _normalised(body, [_attachment(item) for item in items if isinstance(item, dict)])
    if isinstance(body, str) and "x-www-form-urlencoded" in content_type:
        fields = {key: values[0] for key, values in parse_qs(body).items()}
        return _normalised(fields, [])
    if isinstance(body, str) and "multipart/form-data" in content_type:
        fields, attachments = _multipart(body, str(headers.get("content-type") or ""))
        return _normalised(fields, attachments)
    raise InboundEmailError(
        f"cannot read an email from a {content_type or 'typeless'} body: post JSON or a form"
    )
