"""The one outbound HTTP client, with an SSRF guard.

Every request to a user-supplied URL goes through ``safe_client()``: the host is resolved
and refused when any address is loopback, private, link-local, CGNAT, multicast, reserved
or a cloud metadata address (IPv4 and IPv6 alike), unless it is on the allow-list an admin
configured. The check runs in the transport, so every redirect hop is checked again.
Only http and https are allowed.

Calls made while a run's step executes carry the run's correlation id (``X-Correlation-ID``);
with tracing on, the httpx instrumentation adds the W3C trace context (apps/core/tracing.py).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from .tracing import current_correlation_id

ALLOWED_SCHEMES = {"http", "https"}
CGNAT = ipaddress.ip_network("100.64.0.0/10")
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
CORRELATION_HEADER = "X-Correlation-ID"


class SSRFError(httpx.RequestError):
    """The destination is not allowed. Permanent: retrying cannot help."""


def _allowed_networks(allow: Iterable[str]) -> tuple[set[str], list[ipaddress._BaseNetwork]]:
    hosts, networks = set(), []
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry)
    return hosts, networks


def is_forbidden_address(address: ipaddress._BaseAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in CGNAT)
        or (
            isinstance(address, ipaddress.IPv6Address)
            and address.sixtofour is not None
            and is_forbidden_address(address.sixtofour)
        )
    )


def check_url(url: str, *, allow: Iterable[str] = ()) -> None:
    """Raise SSRFError unless ``url`` may be fetched. Resolves the host name."""
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise SSRFError(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise SSRFError("the URL has no host")
    allowed_hosts, allowed_networks = _allowed_networks(
        [*settings.FLOWGATE["SSRF_ALLOWLIST"], *allow]
    )
    if host in allowed_hosts:
        return
    if host in METADATA_HOSTS:
        raise SSRFError(f"{host} is a cloud metadata address")
    try:
        infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise httpx.ConnectError(f"cannot resolve {host}: {error.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if any(address in network for network in allowed_networks):
            continue
        if is_forbidden_address(address):
            raise SSRFError(
                f"{host} resolves to {address}, a private or internal address; to call it, "
                "ask an admin of your workspace (Settings → Members) to have it added to the "
                "server's SSRF_ALLOWLIST"
            )


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, *, allow: Iterable[str] = (), **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self._allow = tuple(allow)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_url(str(request.url), allow=self._allow)
        return super().handle_request(request)


def _send_correlation_id(request: httpx.Request) -> None:
    """Name the run a call is made for, unless the caller already did."""
    correlation_id = current_correlation_id()
    if correlation_id and CORRELATION_HEADER not in request.headers:
        request.headers[CORRELATION_HEADER] = correlation_id


def safe_client(
    *, allow: Iterable[str] = (), timeout: float | None = None, follow_redirects: bool = True
) -> httpx.Client:
    """An httpx client whose every request (and redirect) passes the SSRF guard."""
    return httpx.Client(
        transport=GuardedTransport(allow=allow, retries=0),
        timeout=timeout or settings.FLOWGATE["HTTP_TIMEOUT_SECONDS"],
        follow_redirects=follow_redirects,
        max_redirects=5,
        headers={"User-Agent": "Flowgate/1"},
        event_hooks={"request": [_send_correlation_id]},
    )


def internal_client(*, timeout: float | None = None) -> httpx.Client:
    """A client for Flowgate's own services (model server, registry, OPA) at addresses an
    operator configured, not a user: no SSRF guard, no redirects."""
    return httpx.Client(
        timeout=timeout or settings.FLOWGATE["HTTP_TIMEOUT_SECONDS"],
        event_hooks={"request": [_send_correlation_id]},
    )
