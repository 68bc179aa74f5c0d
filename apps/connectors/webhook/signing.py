"""Signatures for outgoing webhooks, in the format Flowgate's own incoming webhooks verify:
``X-Flowgate-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Flowgate-Signature"


def signature(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"
