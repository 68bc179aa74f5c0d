"""The SSRF guard's rules: which URLs may be fetched and which addresses reached.

``target_check`` reads a URL strictly (one spelling per host: no octal, hex or single-number
IPv4, no user info, ports 1-65535); ``addresses_checked`` resolves a host once and refuses it
when any address is special-purpose or cloud metadata (apps/core/special_addresses.py). The
network backends below connect to exactly those checked addresses, so a resolver that
answers differently the second time (DNS rebinding) is never asked a second time. TLS still
verifies the certificate against the host name: httpcore passes it as SNI after connecting.

``url_within`` says whether a URL is under a base URL (same scheme, host, port and path
prefix): credentials a connection adds belong to that scope only.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import httpcore
import httpx

from .special_addresses import (
    METADATA_HOSTS,
    Address,
    Network,
    metadata_reason,
    special_purpose_reason,
)

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
DNS_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# A last label like these makes a browser or libc read the host as an IPv4 number
# (WHATWG URL "ends in a number"): 0x7f.1, 2130706433, 017700000001, 127.1.
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class SSRFError(httpx.RequestError):
    """The destination is not allowed. Permanent: retrying cannot help."""


class UnusableURL(SSRFError):
    """The URL cannot be read unambiguously (odd IP notation, bad port, user info…)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower case, no trailing dot, IPv6 without brackets
    port: int
    path: str  # percent-decoded, dot segments removed

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


@dataclass(frozen=True)
class Allowance:
    """An admin's allow-list: host names, and networks the special-purpose check skips."""

    hosts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowance:
        hosts, networks = set(), []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def covers(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


MAX_ALLOWLIST_ENTRIES = 100
# Broader than these, an entry stops being "this API" and opens whole internal networks.
WIDEST_PREFIX = {4: 8, 6: 32}


def allowlist_entry_check(entry: str) -> str:
    """One allow-list entry, normalised (a CIDR network or a host name); ValueError with a
    message a person can act on when it is neither or too broad. (A network may hold a
    cloud metadata address: that address stays refused all the same.)"""
    text = entry.strip().lower().rstrip(".")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        network = None
    if network is not None:
        if network.prefixlen < WIDEST_PREFIX[network.version]:
            raise ValueError(
                f"{entry!r} is too broad: allow at most a /{WIDEST_PREFIX[network.version]}"
            )
        return str(network)
    if not text or not all(DNS_LABEL.match(label) for label in text.split(".")):
        raise ValueError(f"{entry!r} is neither a host name nor a network like 10.1.0.0/16")
    if text in METADATA_HOSTS:
        raise ValueError(f"{entry!r} is a cloud metadata host, which is never allowed")
    return text


def target_check(url: str | httpx.URL) -> Target:
    """The URL's parts, or UnusableURL/SSRFError saying why it cannot be used."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as error:
        raise UnusableURL(f"the URL cannot be used: {error}") from None
    scheme = parsed.scheme
    if scheme not in ALLOWED_SCHEMES:
        raise SSRFError(f"only http and https URLs are allowed, not {scheme or 'none'!r}")
    if parsed.userinfo:
        raise UnusableURL(
            "the URL cannot be used: it carries a user name or password before '@'; "
            "put credentials in a connection"
        )
    host = _host(parsed.raw_host.decode("ascii", errors="replace"))
    port = DEFAULT_PORTS[scheme] if parsed.port is None else parsed.port
    if not 1 <= port <= 65535:
        raise UnusableURL(f"the URL cannot be used: port {port} is out of range (1-65535)")
    return Target(scheme, host, port, _clean_path(parsed.path))


def _host(raw: str) -> str:
    host = raw.lower().rstrip(".")
    if not host:
        raise UnusableURL("the URL cannot be used: it has no host")
    if ":" in host:  # an IPv6 literal
        try:
            literal: ipaddress.IPv6Address | None = ipaddress.IPv6Address(host)
        except ValueError:
            literal = None
        if literal is None or literal.scope_id:
            raise UnusableURL(
                f"the URL cannot be used: {raw!r} is not an IPv6 address (zone ids are refused)"
            )
        return str(literal)
    labels = host.split(".")
    if NUMERIC_LABEL.match(labels[-1]):
        try:
            address = ipaddress.IPv4Address(host)  # exactly four decimal parts, no zeros
        except ValueError:
            raise UnusableURL(
                f"the URL cannot be used: {raw!r} is not a plain IPv4 address; write it as "
                "four decimal numbers like 192.0.2.10"
            ) from None
        return str(address)
    if not all(DNS_LABEL.match(label) for label in labels):
        raise UnusableURL(f"the URL cannot be used: {raw!r} is not a valid host name")
    return host


def _clean_path(path: str) -> str:
    cleaned = posixpath.normpath(path or "/")
    cleaned = "/" + cleaned.lstrip("/")  # normpath keeps a leading '//'
    if path.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def url_within(url: str | httpx.URL, base_url: str) -> bool:
    """True when ``url`` is under ``base_url``: same scheme, host and port, and a path at or
    below the base's path (``/v1`` covers ``/v1`` and ``/v1/x``, not ``/v10``)."""
    try:
        target, base = target_check(url), target_check(base_url)
    except SSRFError:
        return False
    if target.origin != base.origin:
        return False
    prefix = base.path.rstrip("/")
    return not prefix or target.path == prefix or target.path.startswith(prefix + "/")


def same_origin(url: str | httpx.URL, base_url: str) -> bool:
    try:
        return target_check(url).origin == target_check(base_url).origin
    except SSRFError:
        return False


def host_check(host: str) -> None:
    """Refuse metadata host names before anything is resolved."""
    if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
        raise SSRFError(f"{host} is a cloud metadata address")


def addresses_checked(host: str, port: int, allowance: Allowance) -> list[str]:
    """Resolve ``host`` once; every address must pass, or SSRFError names the first that
    does not. Returns the addresses to connect to, in the resolver's order."""
    host_check(host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise httpx.ConnectError(f"cannot resolve {host}: {reason}") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%")[0]
        address = ipaddress.ip_address(text)
        _address_check(host, address, allowance)
        if text not in addresses:
            addresses.append(text)
    return addresses


def _address_check(host: str, address: Address, allowance: Allowance) -> None:
    metadata = metadata_reason(address)
    if metadata:
        raise SSRFError(f"{host} resolves to {address}, {metadata}; it is never allowed")
    if host in allowance.hosts or allowance.covers(address):
        return
    special = special_purpose_reason(address)
    if special:
        raise SSRFError(
            f"{host} resolves to {address}, a private or internal address ({special}); "
            "to call it, ask an admin of your workspace to add it to the egress allow-list "
            "(Settings → Egress)"
        )


# A request's head and body are sent together, unless the body is this big already.
COALESCED_BYTES = 64 * 1024
_NOT_SET = object()  # a stream's timeout before it sets one


class _Stream(httpcore.NetworkStream):
    """A connection's socket, as httpcore's own sync stream reads and writes it, with two
    system calls fewer per request: the head and the body go out in one send (when the
    response is read), and the socket's timeout is set only when it changes (httpcore
    set it before every read and write). Each such call lets go of the GIL and takes it
    back: with a worker's I/O threads calling out together, they queued for it there
    (in-process drain of call-out runs: ~1.3 ms of wall time per ``settimeout``)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket = inner.get_extra_info("socket")
        self._timeout: object = _NOT_SET
        self._unsent: list[bytes] = []
        self._unsent_bytes = 0
        self._write_timeout: float | None = None

    def _timeout_is(self, timeout: float | None) -> None:
        if timeout != self._timeout:
            self._socket.settimeout(timeout)
            self._timeout = timeout

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._send_unsent()
        try:
            self._timeout_is(timeout)
            return self._socket.recv(max_bytes)
        except TimeoutError as error:
            raise httpcore.ReadTimeout(error) from error
        except OSError as error:
            raise httpcore.ReadError(error) from error

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._unsent.append(buffer)
            self._unsent_bytes += len(buffer)
            self._write_timeout = timeout
            if self._unsent_bytes >= COALESCED_BYTES:
                self._send_unsent()

    def _send_unsent(self) -> None:
        if not self._unsent:
            return
        data = memoryview(b"".join(self._unsent))
        self._unsent.clear()
        self._unsent_bytes = 0
        try:
            self._timeout_is(self._write_timeout)
            while data:
                data = data[self._socket.send(data) :]
        except TimeoutError as error:
            raise httpcore.WriteTimeout(error) from error
        except OSError as error:
            raise httpcore.WriteError(error) from error

    def close(self) -> None:
        self._unsent.clear()
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._send_unsent()
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to the addresses ``addresses_checked`` returned, never to a name."""

    def __init__(self, allowance: Allowance) -> None:
        self._allowance = allowance
        self._inner = httpcore.SyncBackend()

    def connect_tcp(  # type: ignore[override]  # options are passed through as given
        self, host: str, port: int, **options: Any
    ) -> httpcore.NetworkStream:
        addresses = addresses_checked(host, port, self._allowance)
        for index, address in enumerate(addresses):
            try:
                return _Stream(self._inner.connect_tcp(address, port, **options))
            except httpcore.ConnectError:
                if index == len(addresses) - 1:
                    raise
        raise httpcore.ConnectError(f"{host} has no address")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise SSRFError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    """The asyncio twin of PinnedBackend: resolves in a worker thread, then connects."""

    def __init__(self, allowance: Allowance) -> None:
        self._allowance = allowance
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(  # type: ignore[override]  # options are passed through as given
        self, host: str, port: int, **options: Any
    ) -> httpcore.AsyncNetworkStream:
        addresses = await anyio.to_thread.run_sync(addresses_checked, host, port, self._allowance)
        for index, address in enumerate(addresses):
            try:
                return await self._inner.connect_tcp(address, port, **options)
            except httpcore.ConnectError:
                if index == len(addresses) - 1:
                    raise
        raise httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise SSRFError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
