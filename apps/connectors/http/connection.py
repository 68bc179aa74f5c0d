"""The ``http_api`` connection type: a base URL and how to authenticate to it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import Field

from apps.core.http import SSRFError, safe_client

from ..types import ConnectionConfig, ConnectionHandle, ConnectionType, SecretField, TestOutcome


class HttpApiConfig(ConnectionConfig):
    base_url: str = Field(
        default="",
        description="Requests with a relative URL go here; Test connection GETs it.",
        pattern=r"^(https?://\S+)?$",
    )
    auth: Literal["none", "bearer", "basic", "header"] = Field(
        default="bearer", description="bearer: token; basic: username + password; header: API key."
    )
    username: str = Field(default="", description="Basic auth user name.")
    header_name: str = Field(
        default="X-API-Key", description="Header that carries the API key (header auth)."
    )


class HttpApiConnection(ConnectionType):
    key = "http_api"
    title = "HTTP API"
    description = "A REST API with bearer, basic or API-key header authentication."
    Config = HttpApiConfig
    secret_fields = (
        SecretField("token", "Bearer token", "For bearer auth."),
        SecretField("password", "Password", "For basic auth."),
        SecretField("api_key", "API key", "For header auth."),
    )

    @classmethod
    def test(cls, config: HttpApiConfig, secrets: Mapping[str, str]) -> TestOutcome:
        if not config.base_url:
            return TestOutcome(False, "config", "set a base URL to test this connection")
        try:
            with safe_client(timeout=10) as client:
                response = client.get(config.base_url, headers=auth_headers_for(config, secrets))
        except SSRFError as error:
            return TestOutcome(False, "refused", f"refused by the SSRF guard: {error}")
        except httpx.TimeoutException:
            return TestOutcome(False, "timeout", f"{config.base_url} did not answer in time")
        except httpx.RequestError as error:
            return _request_failure(config.base_url, error)
        if response.status_code in (401, 403):
            return TestOutcome(
                False,
                "auth",
                f"authentication failed: {config.base_url} answered {response.status_code}",
            )
        return TestOutcome(
            True, "ok", f"connected: {config.base_url} answered {response.status_code}"
        )


def _request_failure(url: str, error: httpx.RequestError) -> TestOutcome:
    text = str(error)
    if "resolve" in text or "Name or service not known" in text:
        return TestOutcome(False, "dns", f"DNS: {text}")
    if "refused" in text.lower():
        return TestOutcome(False, "refused", f"connection refused by {url}")
    if "SSL" in text or "certificate" in text:
        return TestOutcome(False, "tls", f"TLS failed with {url}: {text}")
    return TestOutcome(False, "error", f"could not reach {url}: {text}")


def auth_headers_for(config: HttpApiConfig, secrets: Mapping[str, str]) -> dict[str, str]:
    if config.auth == "bearer" and secrets.get("token"):
        return {"Authorization": f"Bearer {secrets['token']}"}
    if config.auth == "basic" and (config.username or secrets.get("password")):
        pair = f"{config.username}:{secrets.get('password', '')}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    if config.auth == "header" and secrets.get("api_key"):
        return {config.header_name: secrets["api_key"]}
    return {}


def auth_headers(connection: ConnectionHandle) -> dict[str, str]:
    """The headers that authenticate a request with ``connection``."""
    return auth_headers_for(connection.config, connection.secrets)


def resolve_url(connection: ConnectionHandle | None, url: str) -> str:
    """``url`` as given when absolute; joined to the connection's base URL when relative."""
    if connection is None or url.startswith(("http://", "https://")):
        return url
    base: Any = connection.config.base_url
    return f"{base.rstrip('/')}/{url.lstrip('/')}" if base else url
