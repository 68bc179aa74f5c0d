"""DNS rebinding: the guard resolves a host once and the client connects to exactly that
address, on every redirect hop, in the sync and the asyncio client alike, and in the
engine's calls (``safe_request``, over kept http.client connections).

A resolver that answers an allowed address first and an internal one next (what a
rebinding DNS server does) is played in-process; both answers are loopback listeners on
the same port: 127.0.0.2 (allow-listed, "the checked address") and 127.0.0.1 (internal).
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpx
import pytest

from apps.core.http import SSRFError, egress_allowed, safe_async_client, safe_client, safe_request
from tests.support.http_server import CountingServer

CHECKED, INTERNAL = "127.0.0.2", "127.0.0.1"


@pytest.fixture
def listeners():
    with CountingServer(host=CHECKED) as checked:
        # The internal listener takes the same port on another loopback address.
        internal = CountingServer(host=INTERNAL, port=checked.port)
        with internal:
            yield checked, internal


@pytest.fixture
def rebinding_resolver(monkeypatch):
    """``*.rebind.test`` resolves to CHECKED the first time, INTERNAL every time after."""
    real = socket.getaddrinfo
    asked: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if not str(host).endswith("rebind.test"):
            return real(host, port, *args, **kwargs)
        asked[host] = asked.get(host, 0) + 1
        address = CHECKED if asked[host] == 1 else INTERNAL
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


ALLOW = [f"{CHECKED}/32"]


def test_the_sync_client_connects_to_the_address_it_checked(listeners, rebinding_resolver):
    checked, internal = listeners
    with safe_client(allow=ALLOW) as client:
        response = client.get(f"http://a.rebind.test:{checked.port}/data")
    assert response.status_code == 200
    assert [r["path"] for r in checked.requests] == ["/data"] and internal.requests == []
    assert checked.requests[0]["headers"]["Host"] == f"a.rebind.test:{checked.port}"
    assert rebinding_resolver == {"a.rebind.test": 1}


def test_every_redirect_hop_is_pinned_to_its_checked_address(listeners, rebinding_resolver):
    checked, internal = listeners
    hop = f"http://b.rebind.test:{checked.port}/landing"
    with safe_client(allow=ALLOW) as client:
        response = client.get(f"http://a.rebind.test:{checked.port}/redirect?to={hop}")
    assert response.status_code == 200
    assert [r["path"] for r in checked.requests] == [f"/redirect?to={hop}", "/landing"]
    assert internal.requests == []


def test_the_engines_calls_connect_to_the_address_checked_on_every_hop(
    listeners, rebinding_resolver
):
    checked, internal = listeners
    hop = f"http://b.rebind.test:{checked.port}/landing"
    with egress_allowed(ALLOW):
        first = safe_request(
            "GET", f"http://a.rebind.test:{checked.port}/data", headers={}, timeout=5
        )
        second = safe_request(
            "POST", f"http://c.rebind.test:{checked.port}/redirect?to={hop}", headers={}, timeout=5
        )
    assert first.status_code == second.status_code == 200
    assert [r["path"] for r in checked.requests] == ["/data", f"/redirect?to={hop}", "/landing"]
    assert checked.requests[0]["headers"]["Host"] == f"a.rebind.test:{checked.port}"
    assert internal.requests == []
    assert rebinding_resolver == {"a.rebind.test": 1, "b.rebind.test": 1, "c.rebind.test": 1}


def test_the_async_client_connects_to_the_address_it_checked(listeners, rebinding_resolver):
    checked, internal = listeners
    hop = f"http://b.rebind.test:{checked.port}/landing"

    async def fetch():
        async with safe_async_client(allow=ALLOW) as client:
            first = await client.get(f"http://a.rebind.test:{checked.port}/data")
            second = await client.get(f"http://c.rebind.test:{checked.port}/redirect?to={hop}")
            return first.status_code, second.status_code

    assert asyncio.run(fetch()) == (200, 200)
    assert [r["path"] for r in checked.requests] == ["/data", f"/redirect?to={hop}", "/landing"]
    assert internal.requests == []


def test_a_host_with_any_internal_address_is_refused_before_connecting(listeners, monkeypatch):
    checked, internal = listeners
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "mixed.test":
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (CHECKED, int(port))),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (INTERNAL, int(port))),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(SSRFError, match=r"resolves to 127\.0\.0\.1"), safe_client(allow=ALLOW) as c:
        c.get(f"http://mixed.test:{checked.port}/")

    async def fetch():
        async with safe_async_client(allow=ALLOW) as client:
            await client.get(f"http://mixed.test:{checked.port}/")

    with pytest.raises(SSRFError, match=r"resolves to 127\.0\.0\.1"):
        asyncio.run(fetch())
    with pytest.raises(SSRFError, match=r"resolves to 127\.0\.0\.1"), egress_allowed(ALLOW):
        safe_request("GET", f"http://mixed.test:{checked.port}/", headers={}, timeout=5)
    assert checked.requests == [] and internal.requests == []


def test_the_async_client_refuses_what_the_sync_client_refuses(listeners):
    _, internal = listeners

    async def fetch(url):
        async with safe_async_client() as client:
            await client.get(url)

    with pytest.raises(SSRFError, match="internal address"):
        asyncio.run(fetch(f"{internal.url}/"))
    with pytest.raises(SSRFError, match="internal address"), safe_client() as client:
        client.get(f"{internal.url}/")
    assert internal.requests == []


@pytest.fixture
def tls_listener(monkeypatch):
    """An HTTPS listener on CHECKED whose certificate names a.rebind.test, and clients that
    trust the test CA that signed it."""
    trustme = pytest.importorskip("trustme")
    import apps.core.http as http

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("a.rebind.test").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    monkeypatch.setattr(http, "_ssl_context", lambda: client_context)
    server = CountingServer(host=CHECKED)
    server._server.socket = server_context.wrap_socket(server._server.socket, server_side=True)
    with server:
        yield server


def test_tls_to_the_pinned_address_still_verifies_the_host_name(tls_listener, monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if not str(host).endswith(".test"):
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (CHECKED, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with safe_client(allow=ALLOW) as client:
        assert client.get(f"https://a.rebind.test:{tls_listener.port}/secure").status_code == 200
        # The same address under a name the certificate does not carry: refused by TLS.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            client.get(f"https://b.rebind.test:{tls_listener.port}/secure")
    with egress_allowed(ALLOW):
        secure = f"https://a.rebind.test:{tls_listener.port}/secure"
        assert safe_request("GET", secure, headers={}, timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError, match="certificate"):
            safe_request("GET", secure.replace("a.", "b."), headers={}, timeout=5)
    assert [request["path"] for request in tls_listener.requests] == ["/secure"] * 2
