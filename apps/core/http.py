"""The one outbound HTTP client, with an SSRF guard.

Every request to a user-supplied URL goes through ``safe_client()`` (or its asyncio twin
``safe_async_client()``), or, for the engine's calls, ``safe_request()`` (the same guard over
http.client connections each thread keeps: about half the CPU). Each hop, redirects
included, is read strictly and its host resolved once; the connection goes to exactly the
address that was checked, so DNS rebinding cannot swap in an internal one
(apps/core/egress.py). Special-purpose and cloud
metadata addresses are refused (apps/core/special_addresses.py) unless an admin allow-listed
the range (``SSRF_ALLOWLIST``, and each workspace's Settings → Egress); metadata never.
Only http and https are allowed. Proxies from the environment are not used.

Calls made while a run's step executes carry the run's correlation id (``X-Correlation-ID``);
with tracing on, the httpx instrumentation adds the W3C trace context (apps/core/tracing.py).
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

from .egress import (
    DEFAULT_PORTS,
    Allowance,
    AsyncPinnedBackend,
    PinnedBackend,
    SSRFError,
    Target,
    UnusableURL,
    addresses_checked,
    same_origin,
    target_check,
    url_within,
)
from .kept_connections import Answer, KeptConnection, Outgoing, exchange
from .tracing import current_correlation_id, tracing_enabled
from .wire import (
    IDEMPOTENT_METHODS,
    header_fields,
    json_body,
    redirect_fields,
    redirect_location,
    redirected,
)

__all__ = [
    "SSRFError",
    "UnusableURL",
    "check_url",
    "credential_scope",
    "egress_allowed",
    "internal_async_client",
    "internal_client",
    "internal_post_json",
    "pooled_safe_client",
    "safe_async_client",
    "safe_client",
    "safe_request",
    "same_origin",
    "target_check",
    "url_within",
]

CORRELATION_HEADER = "X-Correlation-ID"
MAX_REDIRECTS = 5
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5)
# The clients the engine's calls reuse (``pooled_safe_client``): one per thread, since a
# thread makes one call at a time, with room for the few hosts a thread calls in turn.
# (One client shared by a process's I/O threads cost more CPU than it saved: httpcore's
# pool walks all its connections, for each of them, on every request.) Kept-alive
# connections live less than common servers' idle timeout (5 s: uvicorn, Node), so a
# call seldom picks one the far end is closing.
POOLED_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=2)
POOLED_CLIENTS = 16  # per thread
# The allow-list of the workspace whose work runs now (see ``egress_allowed``).
_workspace_allowlist: ContextVar[tuple[str, ...]] = ContextVar("egress_allowlist", default=())


@contextmanager
def egress_allowed(entries: Iterable[str]) -> Iterator[None]:
    """Safe clients made inside also allow ``entries``: a workspace's own allow-list (Settings
    → Egress), set by whoever knows the workspace (a block, the connection test) so that
    code deeper down (an OAuth2 token request) needs no extra argument."""
    token = _workspace_allowlist.set(tuple(entries))
    try:
        yield
    finally:
        _workspace_allowlist.reset(token)


def _default_timeout() -> float:
    return settings.FLOWGATE["HTTP_TIMEOUT_SECONDS"]


def _allowance(allow: Iterable[str]) -> Allowance:
    environment = settings.FLOWGATE["SSRF_ALLOWLIST"]
    return Allowance.parse([*environment, *_workspace_allowlist.get(), *allow])


def check_url(url: str, *, allow: Iterable[str] = ()) -> None:
    """Raise SSRFError (UnusableURL for a URL that cannot be read) unless ``url`` may be
    fetched. Resolves the host name; the clients below check again when they connect."""
    target = target_check(url)
    addresses_checked(target.host, target.port, _allowance(allow))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: making one costs milliseconds (it loads the
    CA bundle), more than a call to a nearby API, so clients made per call share it."""
    return httpx.create_ssl_context()


def _pool_options(limits: httpx.Limits = LIMITS) -> dict[str, Any]:
    return {
        "ssl_context": _ssl_context(),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go through PinnedBackend."""

    def __init__(self, *, allow: Iterable[str] = (), limits: httpx.Limits = LIMITS) -> None:
        # Not calling HTTPTransport.__init__: it would build a pool that resolves names.
        self._pool = httpcore.ConnectionPool(
            **_pool_options(limits), network_backend=PinnedBackend(_allowance(allow))
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target_check(request.url)
        return super().handle_request(request)


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    """The asyncio twin of GuardedTransport."""

    def __init__(self, *, allow: Iterable[str] = ()) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_options(), network_backend=AsyncPinnedBackend(_allowance(allow))
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target_check(request.url)
        return await super().handle_async_request(request)


def _send_correlation_id(request: httpx.Request) -> None:
    """Name the run a call is made for, unless the caller already did."""
    correlation_id = current_correlation_id()
    if correlation_id and CORRELATION_HEADER not in request.headers:
        request.headers[CORRELATION_HEADER] = correlation_id


CREDENTIAL_SCOPE = "flowgate.credential_scope"


def credential_scope(base_url: str, header_names: Iterable[str]) -> dict[str, Any]:
    """Request ``extensions`` saying which headers are a connection's credentials and the
    base URL they belong to: any hop (a redirect) outside it goes without them. httpx
    copies extensions to each redirect request, so a shared client works as well."""
    return {CREDENTIAL_SCOPE: (base_url, tuple(name.lower() for name in header_names))}


def _keep_credentials_in_scope(request: httpx.Request) -> None:
    """Once a hop leaves the scope, the headers are removed; later hops are built from it,
    so they stay removed even back on the base URL."""
    scope = request.extensions.get(CREDENTIAL_SCOPE)
    if scope and not url_within(request.url, scope[0]):
        for name in scope[1]:
            request.headers.pop(name, None)


REQUEST_HOOKS = (_send_correlation_id, _keep_credentials_in_scope)


class _GuardedClient(httpx.Client):
    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        return super().build_request(method, _readable(url), **kwargs)


class _AsyncGuardedClient(httpx.AsyncClient):
    def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx.Request:
        return super().build_request(method, _readable(url), **kwargs)


def _readable(url: Any) -> httpx.URL:
    """httpx raises InvalidURL (not a RequestError) for a URL it cannot parse; callers
    catch SSRFError, so they answer with a message instead of crashing."""
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as error:
        raise UnusableURL(f"the URL cannot be used: {error}") from None


def safe_client(
    *,
    allow: Iterable[str] = (),
    timeout: float | None = None,
    follow_redirects: bool = True,
    limits: httpx.Limits = LIMITS,
) -> httpx.Client:
    """An httpx client whose every request (and redirect) passes the SSRF guard.

    ``allow``: allow-list entries on top of ``SSRF_ALLOWLIST`` and of the workspace's list
    (``egress_allowed``), fixed when the client is made. Requests sent with
    ``extensions=credential_scope(...)`` keep those headers to that base URL."""
    return _GuardedClient(
        transport=GuardedTransport(allow=allow, limits=limits),
        timeout=timeout or _default_timeout(),
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": "Flowgate/1"},
        event_hooks={"request": list(REQUEST_HOOKS)},
    )


_pooled = threading.local()


def pooled_safe_client(*, follow_redirects: bool = True) -> httpx.Client:
    """A ``safe_client`` kept by this thread for its calls made under the same allow-list
    (the environment's and the workspace's in force, ``egress_allowed``): a call to an API
    called a moment ago reuses a kept-alive connection, where a client per call costs a
    new client, a TCP connection and a TLS handshake each time. A connection is only ever
    opened under the allow-list of its client's key, and went to an address checked then.
    The client is shared by every run (and workspace) with that allow-list, so it starts
    each call without the cookies earlier calls received, as a new client would.
    Do not close it; pass each request's ``timeout``."""
    key = (os.getpid(), follow_redirects, *settings.FLOWGATE["SSRF_ALLOWLIST"], "|")
    key += _workspace_allowlist.get()
    clients: dict[tuple[Any, ...], httpx.Client] | None = getattr(_pooled, "clients", None)
    if clients is None:
        clients = _pooled.clients = {}
    client = clients.get(key)
    if client is None:
        if len(clients) >= POOLED_CLIENTS:  # dropped ones close their connections when collected
            clients.clear()
        client = clients[key] = safe_client(follow_redirects=follow_redirects, limits=POOLED_LIMITS)
    client.cookies.clear()
    return client


def safe_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,
    params: Mapping[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
    extensions: Mapping[str, Any] | None = None,
    most_bytes: int | None = None,
    follow_redirects: bool = True,
) -> httpx.Response:
    """``pooled_safe_client().request(...)``, for the engine's calls (the HTTP block), at
    about half its CPU: over connections this thread keeps (apps/core/kept_connections.py),
    behind the same guard. Each hop (redirects too, at most ``MAX_REDIRECTS``) is read
    strictly and its host resolved and checked once, under ``SSRF_ALLOWLIST`` and the
    workspace's list (``egress_allowed``); the connection goes to the checked address,
    verifying TLS against the URL's host. Redirects are followed as httpx follows them
    (the method, the body, Authorization kept to the origin); headers in a
    ``credential_scope`` go only to hops under its base URL. No proxies, no cookies.

    ``timeout``: for connecting and each read. ``most_bytes``: the body is read up to
    that size, the rest left unread. ``content``: a body sent as it is (the caller names
    its type), in place of ``json``. ``follow_redirects=False``: a redirect is the
    answer. A kept connection found closed by the far end is replaced and the request
    sent again only when that is safe: an idempotent method, or an ``Idempotency-Key``
    header (the far end answers a repeat as the first, as it would the engine's own
    retry of the step). Raises what the client raises: SSRFError
    (UnusableURL), ``httpx.TimeoutException``, other ``httpx.RequestError``s
    (``TooManyRedirects``). With tracing on, the httpx client sends it, so its
    instrumentation carries the trace context."""
    if tracing_enabled():
        return pooled_safe_client(follow_redirects=follow_redirects).request(
            method,
            url,
            headers=headers,
            params=params,
            json=json,
            content=content,
            timeout=timeout,
            extensions=dict(extensions or {}),
        )
    address = _readable(url)
    if params:
        address = address.copy_merge_params(params)
    body = content if json is None else json_body(json)
    fields = header_fields(address, headers, json is not None)
    if CORRELATION_HEADER.lower() not in fields and (correlation_id := current_correlation_id()):
        fields[CORRELATION_HEADER.lower()] = (CORRELATION_HEADER, correlation_id.encode("ascii"))
    scope = (extensions or {}).get(CREDENTIAL_SCOPE)
    allowed = (*settings.FLOWGATE["SSRF_ALLOWLIST"], "|", *_workspace_allowlist.get())
    for _ in range(MAX_REDIRECTS + 1):
        target = target_check(address)
        if scope and not url_within(address, scope[0]):
            for name in scope[1]:
                fields.pop(name, None)
        outgoing = Outgoing(method, address.raw_path.decode("ascii"), list(fields.values()), body)
        answer = exchange(
            ("guarded", *target.origin, allowed),
            functools.partial(_pinned_connection, target, allowed),
            outgoing,
            timeout=timeout,
            repeatable=method in IDEMPOTENT_METHODS or "idempotency-key" in fields,
            most_bytes=most_bytes,
            url=address,
        )
        location = redirect_location(answer)
        if location is None or not follow_redirects:
            return _response(answer)
        method, address, body = redirected(method, address, location, answer.status, body)
        redirect_fields(fields, address, target)
    raise httpx.TooManyRedirects(f"{url}: more than {MAX_REDIRECTS} redirects")


def _pinned_connection(target: Target, allowed: tuple[str, ...], timeout: float) -> KeptConnection:
    """A connection to ``target`` that goes to the addresses its host resolves to once,
    each checked under the allow-list ``allowed`` (the SSRF guard, apps/core/egress.py)."""
    allowance = _parsed_allowance(allowed)

    def addresses() -> list[str]:
        return addresses_checked(target.host, target.port, allowance)

    tls = _ssl_context() if target.scheme == "https" else None
    return KeptConnection(target.host, target.port, timeout=timeout, tls=tls, addresses=addresses)


@functools.lru_cache(maxsize=64)
def _parsed_allowance(allowed: tuple[str, ...]) -> Allowance:
    return Allowance.parse(entry for entry in allowed if entry != "|")


def safe_async_client(
    *,
    allow: Iterable[str] = (),
    timeout: float | None = None,
    follow_redirects: bool = True,
) -> httpx.AsyncClient:
    """``safe_client`` for asyncio code: the same guard, the same pinning."""

    async def run_hooks(request: httpx.Request) -> None:
        for hook in REQUEST_HOOKS:
            hook(request)

    return _AsyncGuardedClient(
        transport=AsyncGuardedTransport(allow=allow),
        timeout=timeout or _default_timeout(),
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": "Flowgate/1"},
        event_hooks={"request": [run_hooks]},
    )


def internal_client(*, timeout: float | None = None) -> httpx.Client:
    """A client for Flowgate's own services (model server, registry, OPA) at addresses an
    operator configured, not a user: no SSRF guard, no redirects."""
    return httpx.Client(
        timeout=timeout or _default_timeout(),
        event_hooks={"request": [_send_correlation_id]},
    )


def internal_async_client(*, timeout: float | None = None) -> httpx.AsyncClient:
    """``internal_client`` for asyncio code."""

    async def send_correlation_id(request: httpx.Request) -> None:
        _send_correlation_id(request)

    return httpx.AsyncClient(
        timeout=timeout or _default_timeout(),
        event_hooks={"request": [send_correlation_id]},
    )


def internal_post_json(
    url: str, body: Any, *, timeout: float, client: httpx.Client | None = None
) -> httpx.Response:
    """POST ``body`` as JSON to one of Flowgate's own services (the model service's
    ``/predict_rows``, on every model step) over a connection this thread keeps to it
    (apps/core/kept_connections.py).

    http.client costs a third of httpx's client CPU per call (0.4-0.5 against 1.3-1.5 ms
    for a one-row prediction on the 2-core machine), paid on the web server's or a
    worker's cores by every run. It raises httpx's errors (``TimeoutException``,
    ``TransportError``) and answers an ``httpx.Response``, so callers handle both alike.
    The request must be safe to repeat: a kept connection the far end had closed is
    reopened and the request sent once more. With tracing on, ``client`` (httpx) sends it,
    so the httpx instrumentation carries the trace context."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    if tracing_enabled() and client is not None:
        headers = {"Content-Type": "application/json"}
        return client.post(url, content=payload, headers=headers, timeout=timeout)
    parts = urlsplit(url)
    scheme, host, port = parts.scheme, parts.hostname or "", parts.port
    fields = [("Host", parts.netloc.encode()), ("Content-Type", b"application/json")]
    if correlation_id := current_correlation_id():
        fields.append((CORRELATION_HEADER, correlation_id.encode()))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    outgoing = Outgoing("POST", target or "/", fields, payload)

    def connection_for(timeout: float) -> KeptConnection:
        tls = _ssl_context() if scheme == "https" else None
        return KeptConnection(host, port or DEFAULT_PORTS[scheme], timeout=timeout, tls=tls)

    key = ("internal", scheme, host, port)
    answer = exchange(key, connection_for, outgoing, timeout=timeout, repeatable=True, url=url)
    return _response(answer)


def _response(answer: Answer) -> httpx.Response:
    """The answer as httpx would give it: its body decoded (gzip, deflate…) by httpx's
    decoders and its headers as received."""
    response = httpx.Response(
        answer.status, headers=answer.headers, stream=httpx.ByteStream(answer.content)
    )
    response.read()
    response.elapsed = timedelta(seconds=answer.elapsed)
    return response
