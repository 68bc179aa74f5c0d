"""The ``smtp`` connection type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from ..types import ConnectionConfig, ConnectionType, SecretField, TestOutcome
from . import client


class SmtpConfig(ConnectionConfig):
    host: str = Field(min_length=1, description="SMTP server host name.")
    port: int = Field(default=587, ge=1, le=65535, description="587 STARTTLS, 465 TLS, 25 none.")
    security: Literal["starttls", "tls", "none"] = Field(default="starttls")
    username: str = Field(default="", description="Leave blank for a server without AUTH.")
    from_address: str = Field(
        min_length=3, description="Sender address, e.g. Flowgate <noreply@example.com>."
    )
    timeout_seconds: int = Field(default=15, ge=1, le=120)


class SmtpConnection(ConnectionType):
    key = "smtp"
    title = "SMTP (email)"
    description = "An SMTP server that the email block sends through."
    Config = SmtpConfig
    secret_fields = (SecretField("password", "Password"),)

    @classmethod
    def test(cls, config: SmtpConfig, secrets: Mapping[str, str]) -> TestOutcome:
        try:
            session = client.open_session(config, secrets)
        except client.SmtpFailure as failure:
            return TestOutcome(False, failure.stage, failure.message)
        session.quit()
        login = f" as {config.username}" if config.username else ""
        return TestOutcome(True, "ok", f"connected to {config.host}:{config.port}{login}")
