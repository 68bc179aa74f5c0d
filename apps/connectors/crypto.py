"""Encryption at rest for connection secrets.

Secrets are one JSON object per connection, encrypted with Fernet (AES-128-CBC +
HMAC-SHA256). The Fernet keys are derived with HKDF-SHA256 from ``FLOWGATE["ENCRYPTION_KEY"]``
(any length, any alphabet), so an operator can use whatever secret they have. To rotate:
set the new key, move the old one into ``FLOWGATE["RETIRED_ENCRYPTION_KEYS"]``, and run
``manage.py connections rotate-keys``; the old key may be dropped after that.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

HKDF_INFO = b"flowgate/connection-secrets/v1"


class SecretsUnreadable(Exception):
    """No configured key opens the stored secrets (a key was lost or mis-set)."""


def _fernet(key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _keys() -> list[str]:
    flowgate = settings.FLOWGATE
    current: str = flowgate["ENCRYPTION_KEY"]
    if not current:
        raise SecretsUnreadable("FLOWGATE_ENCRYPTION_KEY is not set")
    retired_setting: list[str] = flowgate.get("RETIRED_ENCRYPTION_KEYS") or []
    retired = [key for key in retired_setting if key]
    return [current, *retired]


def _multi() -> MultiFernet:
    # The first key encrypts; every key is tried to decrypt.
    return MultiFernet([_fernet(key) for key in _keys()])


def encrypt_secrets(secrets: dict[str, str]) -> str:
    return _multi().encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()


def decrypt_secrets(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_multi().decrypt(token.encode()))
    except InvalidToken:
        raise SecretsUnreadable(
            "the stored secrets cannot be decrypted with the configured keys"
        ) from None


def reencrypt(token: str) -> str:
    """The same secrets encrypted under the current key (for key rotation)."""
    if not token:
        return token
    try:
        return _multi().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretsUnreadable(
            "the stored secrets cannot be decrypted with the configured keys"
        ) from None
