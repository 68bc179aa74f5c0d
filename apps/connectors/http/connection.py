"""The ``http_api`` connection type: a base URL and how to authenticate to it."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator, model_validator

from apps.core.http import (
    SSRFError,
    UnusableURL,
    credential_scope,
    safe_client,
    same_origin,
    target_check,
    url_within,
)

from ..types import ConnectionConfig, ConnectionHandle, ConnectionType, SecretField, TestOutcome


class HttpApiConfig(ConnectionConfig):
    base_url: str = Field(
        default="",
        description="Requests with a relative URL go here; Test connection GETs it.",
        pattern=r"^(https?://\S+)?$",
    )
    auth: Literal["none", "bearer", "basic", "header", "oauth2_client_credentials"] = Field(
        default="bearer",
        description="bearer: token; basic: username + password; header: API key; "
        "oauth2_client_credentials: a token from the token URL.",
    )
    username: str = Field(default="", description="Basic auth user name.")
    header_name: str = Field(
        default="X-API-Key", description="Header that carries the API key (header auth)."
    )
    token_url: str = Field(
        default="", pattern=r"^(https?://\S+)?$", description="OAuth2 token endpoint."
    )
    client_id: str = Field(default="", description="OAuth2 client id.")
    scope: str = Field(default="", description="OAuth2 scopes, space-separated (optional).")

    @field_validator("base_url", "token_url")
    @classmethod
    def readable_url(cls, value: str) -> str:
        if value:
            try:
                target_check(value)
            except SSRFError as error:
                raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def oauth2_needs_its_endpoint(self) -> HttpApiConfig:
        if self.auth == "oauth2_client_credentials" and not (self.token_url and self.client_id):
            raise ValueError("OAuth2 client credentials need a token URL and a client id")
        return self


class HttpApiConnection(ConnectionType):
    key = "http_api"
    title = "HTTP API"
    description = "A REST API with bearer, basic or API-key header authentication."
    Config = HttpApiConfig
    secret_fields = (
        SecretField("token", "Bearer token", "For bearer auth."),
        SecretField("password", "Password", "For basic auth."),
        SecretField("api_key", "API key", "For header auth."),
        SecretField("client_secret", "Client secret", "For OAuth2 client credentials."),
    )

    @classmethod
    def test(cls, config: HttpApiConfig, secrets: Mapping[str, str]) -> TestOutcome:
        if not config.base_url:
            return TestOutcome(False, "config", "set a base URL to test this connection")
        try:
            headers = auth_headers_for(config, secrets)
        except AuthFailure as failure:
            return TestOutcome(False, failure.stage, failure.message)
        response = probe(config.base_url, headers=headers, base_url=config.base_url)
        if isinstance(response, TestOutcome):
            return response
        if response.status_code in (401, 403):
            return TestOutcome(
                False,
                "auth",
                f"authentication failed: {config.base_url} answered {response.status_code}",
            )
        return TestOutcome(
            True, "ok", f"connected: {config.base_url} answered {response.status_code}"
        )


def probe(
    url: str, *, headers: dict[str, str], base_url: str, follow_redirects: bool = True
) -> httpx.Response | TestOutcome:
    """GET ``url`` through the SSRF guard for a connection test (``headers`` kept to
    ``base_url``): the response, or the outcome that names the stage that failed."""
    try:
        with safe_client(timeout=10, follow_redirects=follow_redirects) as client:
            return client.get(url, headers=headers, extensions=credential_scope(base_url, headers))
    except UnusableURL as error:
        return TestOutcome(False, "url", str(error))
    except SSRFError as error:
        return TestOutcome(False, "refused", f"refused by the SSRF guard: {error}")
    except httpx.TimeoutException:
        return TestOutcome(False, "timeout", f"{url} did not answer in time")
    except httpx.RequestError as error:
        return _request_failure(url, error)


def _request_failure(url: str, error: httpx.RequestError) -> TestOutcome:
    text = str(error)
    if "resolve" in text or "Name or service not known" in text:
        return TestOutcome(False, "dns", f"DNS: {text}")
    if "refused" in text.lower():
        return TestOutcome(False, "refused", f"connection refused by {url}")
    if "SSL" in text or "certificate" in text:
        return TestOutcome(False, "tls", f"TLS failed with {url}: {text}")
    return TestOutcome(False, "error", f"could not reach {url}: {text}")


class AuthFailure(Exception):
    """No credentials could be obtained (OAuth2 token endpoint refused or unreachable)."""

    def __init__(self, stage: str, message: str, *, retryable: bool):
        super().__init__(message)
        self.stage, self.message, self.retryable = stage, message, retryable


# OAuth2 access tokens, per process, keyed by a hash of the credentials; reused until 30 s
# before they expire.
_tokens: dict[str, tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def _oauth2_token(config: HttpApiConfig, secrets: Mapping[str, str]) -> str:
    secret = secrets.get("client_secret", "")
    key = hashlib.sha256(
        "\0".join([config.token_url, config.client_id, secret, config.scope]).encode()
    ).hexdigest()
    with _tokens_lock:
        cached = _tokens.get(key)
    if cached and cached[1] > time.monotonic() + 30:
        return cached[0]
    form = {"grant_type": "client_credentials", **({"scope": config.scope} if config.scope else {})}
    try:
        # No redirects: a token endpoint has no reason to send the client secret elsewhere.
        with safe_client(timeout=10, follow_redirects=False) as client:
            response = client.post(config.token_url, data=form, auth=(config.client_id, secret))
    except UnusableURL as error:
        raise AuthFailure("url", f"token URL: {error}", retryable=False) from None
    except SSRFError as error:
        raise AuthFailure("refused", f"token URL refused: {error}", retryable=False) from None
    except httpx.RequestError as error:
        failure = _request_failure(config.token_url, error)
        raise AuthFailure(failure.stage, failure.message, retryable=True) from None
    body = _json_or_empty(response)
    if response.status_code in (400, 401, 403):
        reason = body.get("error_description") or body.get("error") or response.status_code
        raise AuthFailure(
            "auth", f"authentication failed: the token endpoint said {reason}", retryable=False
        )
    if response.status_code >= 300 or not body.get("access_token"):
        raise AuthFailure(
            "error",
            f"the token endpoint answered {response.status_code} without an access token",
            retryable=response.status_code >= 500,
        )
    token = str(body["access_token"])
    expires_in = float(body.get("expires_in") or 300)
    with _tokens_lock:
        _tokens[key] = (token, time.monotonic() + expires_in)
    return token


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def auth_headers_for(config: HttpApiConfig, secrets: Mapping[str, str]) -> dict[str, str]:
    """Headers that authenticate a request. Raises AuthFailure when an OAuth2 token cannot
    be obtained."""
    if config.auth == "oauth2_client_credentials":
        return {"Authorization": f"Bearer {_oauth2_token(config, secrets)}"}
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


def scope_problem(config: HttpApiConfig, url: str) -> str | None:
    """Why a step using a connection may not call ``url`` (its credentials belong to the
    connection's base URL: same scheme, host, port and path prefix), or None."""
    if not config.base_url:
        return "the connection has no base URL, so its credentials may go nowhere; set one"
    if not url_within(url, config.base_url):
        return f"{url} is not under the connection's base URL {config.base_url}"
    return None


def static_scope_problem(config: HttpApiConfig, template: str) -> str | None:
    """``scope_problem`` for a URL template as written, before it is filled in: decided
    when the text up to the first ``{{`` fixes the origin (and, written out, the path);
    otherwise the check at run time decides."""
    head, templated = template.split("{{", 1)[0], "{{" in template
    if not config.base_url:
        return scope_problem(config, head)
    if not head.startswith(("http://", "https://")):
        return None if templated else scope_problem(config, _joined(config.base_url, head))
    if not templated:
        return scope_problem(config, head)
    if "/" not in head.split("://", 1)[1]:
        return (
            "write the URL's host out (up to the first '/') when the step uses a "
            "connection, or make the URL relative to the connection's base URL"
        )
    return None if same_origin(head, config.base_url) else scope_problem(config, head)


def _joined(base: str, url: str) -> str:
    return f"{base.rstrip('/')}/{url.lstrip('/')}"


def resolve_url(connection: ConnectionHandle | None, url: str) -> str:
    """``url`` as given when absolute; joined to the connection's base URL when relative."""
    if connection is None or url.startswith(("http://", "https://")):
        return url
    base: Any = connection.config.base_url
    return _joined(base, url) if base else url
