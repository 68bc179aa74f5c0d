"""Webhook signatures in the Standard Webhooks format (https://www.standardwebhooks.com),
for what Flowgate sends (``connector.webhook.out``) and what it receives (``/hooks/...``).

Headers: ``webhook-id`` (the message id, stable across retries), ``webhook-timestamp``
(unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``.
Secrets are ``whsec_<base64 key>``; a connection secret without that prefix (made before
Flowgate used the format) is used as UTF-8 bytes. The former header,
``X-Flowgate-Signature: t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>." + body>``, is still sent
and accepted with the same secret, for receivers and senders not moved over yet.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
LEGACY_HEADER = "X-Flowgate-Signature"
WINDOW_SECONDS = 300  # the Standard Webhooks tolerance: five minutes either way


class SignatureRejected(Exception):
    """``str()`` says what is wrong; ``status`` is 401 (unsigned) or 403 (bad signature)."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _webhook(secret: str) -> Webhook:
    return Webhook(secret if secret.startswith(SECRET_PREFIX) else secret.encode())


def legacy_signature(secret: str, body: bytes, *, timestamp: int) -> str:
    key = _webhook(secret)._whsecret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signed_headers(
    secret: str, *, message_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The signature headers for one delivery attempt of ``body``."""
    moment = int(time.time()) if timestamp is None else timestamp
    signature = _webhook(secret).sign(
        msg_id=message_id, timestamp=datetime.fromtimestamp(moment, tz=UTC), data=body.decode()
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": signature,
        LEGACY_HEADER: legacy_signature(secret, body, timestamp=moment),
    }


def verify(secret: str, headers: dict[str, str], body: bytes) -> str:
    """Check the signature of a received request (``headers`` with lower-case names).
    Returns what identifies this exact signed request (message id and timestamp), which the
    caller remembers for the window to refuse a replay. Raises SignatureRejected."""
    if headers.get("webhook-signature"):
        try:
            _webhook(secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError as error:
            raise SignatureRejected(f"the webhook signature is not valid: {error}") from None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise SignatureRejected("malformed webhook-signature header") from None
        return f"{headers['webhook-id']}.{headers['webhook-timestamp']}"
    legacy = headers.get(LEGACY_HEADER.lower())
    if not legacy:
        raise SignatureRejected(
            "missing webhook-id, webhook-timestamp and webhook-signature headers", status=401
        )
    try:
        parts = dict(item.split("=", 1) for item in legacy.split(","))
        timestamp, given = int(parts["t"]), parts["v1"]
    except (ValueError, KeyError):
        raise SignatureRejected(f"malformed {LEGACY_HEADER} header") from None
    if abs(time.time() - timestamp) > WINDOW_SECONDS:
        raise SignatureRejected("the signature timestamp is outside the 5-minute window")
    expected = legacy_signature(secret, body, timestamp=timestamp).split("v1=")[1]
    if not hmac.compare_digest(expected, given):
        raise SignatureRejected("the signature does not match")
    return f"legacy.{timestamp}.{given}"
