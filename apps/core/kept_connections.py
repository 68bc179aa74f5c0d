"""HTTP/1.1 exchanges over connections each thread keeps, on http.client.

The one piece of connection keeping behind ``internal_post_json`` (the model service) and
``safe_request`` (the HTTP block's SSRF-guarded calls), both in apps/core/http.py. httpx's
client costs about three times the CPU of http.client per call on a worker's cores (its
request and response models, h11's state machine, the pool's bookkeeping); these calls are
made by every run.

A thread keeps at most one idle connection per key. The caller's key names everything a
connection was opened under (for guarded calls: scheme, host, port and the allow-list its
address was checked against), so a connection is only ever reused for what it was opened
for. A connection idle for ``KEPT_ALIVE_SECONDS`` or longer is closed rather than reused:
below common servers' idle timeout (5 s: uvicorn, Node), so a reused one is seldom being
closed by the far end. When a reused one fails before any answer came (the far end closed
it meanwhile), the request is sent once more on a new connection, if the caller says it is
safe to repeat. Errors are httpx's (``TimeoutException``, ``TransportError`` and their
kinds), so callers handle both clients alike.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import httpx

# A kept connection idle longer than this is closed rather than reused.
KEPT_ALIVE_SECONDS = 2.0
MOST_KEPT = 16  # idle connections per thread; past it, the longest idle ones are closed


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request as it goes on the wire: ``target`` is the request line's path and query,
    ``headers`` every header field but Content-Length, already checked (names and values
    that cannot smuggle a line break)."""

    method: str
    target: str
    headers: Sequence[tuple[str, bytes]]
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    content: bytes  # as received (not decoded), at most the caller's ``most_bytes``
    elapsed: float  # seconds, from sending the request to the end of its body


class KeptConnection(http.client.HTTPConnection):
    """An http.client connection that connects to ``addresses()`` (the SSRF guard's checked
    addresses: never a name resolved again) or, without it, to ``host`` by name; wraps
    TLS with ``tls``, verifying the certificate against ``host`` (sent as SNI). A
    request's head and body go out in one send, when its response is read: each system
    call lets go of the GIL, and a worker's I/O threads queue for it (see egress._Stream)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        addresses: Callable[[], list[str]] | None = None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._tls = tls
        self._addresses = addresses
        self._unsent: list[bytes] = []
        self._socket_timeout: float | None = timeout

    def connect(self) -> None:
        if self._addresses is None:
            sock = socket.create_connection((self.host, self.port), self.timeout)
        else:
            sock = _connect_first(self._addresses(), self.port, self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self._socket_timeout = self.timeout

    def timeout_is(self, timeout: float) -> None:
        """Each read and connect waits up to ``timeout``; set on the socket only when it
        changes (a system call)."""
        self.timeout = timeout
        if self.sock is not None and timeout != self._socket_timeout:
            self.sock.settimeout(timeout)
            self._socket_timeout = timeout

    def send(self, data: object) -> None:
        if not isinstance(data, bytes):
            raise TypeError("a kept connection sends bytes only")
        self._unsent.append(data)

    def getresponse(self) -> http.client.HTTPResponse:
        if self._unsent:
            data = b"".join(self._unsent)
            self._unsent.clear()
            super().send(data)
        return super().getresponse()

    def close(self) -> None:
        self._unsent.clear()
        super().close()


def _connect_first(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """A socket connected to the first address that accepts, in the resolver's order;
    a timeout ends the attempt (as httpcore's pinned backend does)."""
    for index, address in enumerate(addresses):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((address, port))
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError:
            sock.close()
            if index == len(addresses) - 1:
                raise
    raise OSError("the host has no address")


_kept = threading.local()  # key → (connection, last used), and the process that made them


def exchange(
    key: Hashable,
    connection_for: Callable[[float], KeptConnection],
    outgoing: Outgoing,
    *,
    timeout: float,
    repeatable: bool,
    most_bytes: int | None = None,
    url: object = "",
) -> Answer:
    """Send ``outgoing`` on this thread's connection for ``key`` (a new one from
    ``connection_for(timeout)`` when none is kept) and read the answer.

    ``timeout``: for connecting and for each read (as httpx's). ``repeatable``: the request
    may be sent again on a new connection when a kept one fails before any answer.
    ``most_bytes``: read at most this much of the body (the connection is then closed
    if more was coming). ``url`` names the request in error messages. Raises httpx's
    ``ConnectTimeout``/``ConnectError`` (and whatever ``addresses()`` raises, such as
    the SSRF guard's ``SSRFError``), ``ReadTimeout``, ``RemoteProtocolError`` or
    ``ReadError``, ``LocalProtocolError`` for a request http.client refuses to send. An
    informational answer (1xx but 100, which http.client skips: 103 Early Hints, 101) is
    an error too, and closes the connection, whose final answer would otherwise be read
    by the next request on it."""
    for reused in _attempts(key):
        connection = _connection(key, connection_for, timeout)
        started = time.perf_counter()
        answered = False
        try:
            if connection.sock is None:
                _connect(connection, url)
            _put(connection, outgoing)
            answer = connection.getresponse()
            answered = True
            if answer.status < 200:  # http.client stops at an informational answer
                raise http.client.HTTPException(f"an informational answer ({answer.status})")
            content = answer.read() if most_bytes is None else answer.read(most_bytes + 1)
        except (http.client.HTTPException, OSError, ValueError) as error:
            _drop(key)
            if reused and repeatable and not answered and not isinstance(error, TimeoutError):
                continue  # closed by the far end while kept: once more, on a new one
            raise _transport_error(error, url, answered) from None
        except BaseException:
            _drop(key)
            raise
        if most_bytes is not None and len(content) > most_bytes:
            content = content[:most_bytes]
        if answer.will_close or not answer.isclosed():  # closing, or a body left unread
            _drop(key)
        else:
            _kept.connections[key] = (connection, time.monotonic())
        elapsed = time.perf_counter() - started
        return Answer(answer.status, answer.getheaders(), content, elapsed)
    raise AssertionError("unreachable: the last attempt is on a new connection")


def _attempts(key: Hashable) -> Iterator[bool]:
    """Whether each attempt reuses a kept connection: a reused one may fail because the
    far end closed it, then one more attempt on a new connection."""
    connections = _connections()
    kept = connections.get(key)
    if kept is not None and time.monotonic() - kept[1] < KEPT_ALIVE_SECONDS:
        yield True
    _drop(key)
    yield False


def _connections() -> dict[Hashable, tuple[KeptConnection, float]]:
    """This thread's kept connections; a process forked from one that kept some starts
    without them (its copies of the parent's sockets are closed)."""
    connections: dict[Hashable, tuple[KeptConnection, float]] | None
    connections = getattr(_kept, "connections", None)
    if connections is None or _kept.pid != os.getpid():
        for connection, _ in (connections or {}).values():
            connection.close()
        connections = _kept.connections = {}
        _kept.pid = os.getpid()
    return connections


def _connection(
    key: Hashable, connection_for: Callable[[float], KeptConnection], timeout: float
) -> KeptConnection:
    connections = _kept.connections
    kept = connections.get(key)
    if kept is not None:
        kept[0].timeout_is(timeout)
        return kept[0]
    _close_idle(connections, crowded=len(connections) >= MOST_KEPT)
    connection = connection_for(timeout)
    connections[key] = (connection, time.monotonic())
    return connection


def _close_idle(
    connections: dict[Hashable, tuple[KeptConnection, float]], *, crowded: bool
) -> None:
    """Close the expired connections (once the far end's idle timeout closes its side,
    each would hold a descriptor until its key is called again); when ``crowded`` and
    none has expired, the half that waited longest."""
    now = time.monotonic()
    stale = [key for key, (_, used) in connections.items() if now - used >= KEPT_ALIVE_SECONDS]
    if crowded and not stale:
        by_age = sorted(connections, key=lambda key: connections[key][1])
        stale = by_age[: len(by_age) // 2 or 1]
    for key in stale:
        _drop(key)


def _drop(key: Hashable) -> None:
    kept = _kept.connections.pop(key, None)
    if kept is not None:
        kept[0].close()


def _connect(connection: KeptConnection, url: object) -> None:
    try:
        connection.connect()
    except TimeoutError as error:
        raise httpx.ConnectTimeout(f"{url}: connecting: {error or 'timed out'}") from None
    except OSError as error:  # refused, unreachable, TLS (certificate) failures
        raise httpx.ConnectError(f"{url}: {error}") from None


def _put(connection: KeptConnection, outgoing: Outgoing) -> None:
    connection.putrequest(
        outgoing.method, outgoing.target, skip_host=True, skip_accept_encoding=True
    )
    for name, value in outgoing.headers:
        connection.putheader(name, value)
    if outgoing.body is not None or outgoing.method in ("POST", "PUT", "PATCH"):
        connection.putheader("Content-Length", str(len(outgoing.body or b"")))
    connection.endheaders(outgoing.body)


def _transport_error(error: Exception, url: object, answered: bool) -> httpx.TransportError:
    if isinstance(error, TimeoutError):
        return httpx.ReadTimeout(f"{url}: {error or 'timed out'}")
    if isinstance(error, ValueError) and not isinstance(error, OSError):
        return httpx.LocalProtocolError(f"{url}: {error}")
    if isinstance(error, http.client.RemoteDisconnected) and not answered:
        return httpx.RemoteProtocolError(f"{url}: the server disconnected without answering")
    if isinstance(error, http.client.HTTPException):
        return httpx.RemoteProtocolError(f"{url}: {error!r}")
    return httpx.ReadError(f"{url}: {error!r}")
