"""A guarded request's wire form, as httpx's client makes it (apps/core/http.py,
``safe_request``): its header fields, and where a redirect goes with which method, body
and headers. Sent over apps/core/kept_connections.py."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx
from httpx._client import ACCEPT_ENCODING as HTTPX_ACCEPT_ENCODING  # what its decoders read

from .egress import Target, target_check
from .kept_connections import Answer

# Methods a server must treat a repeat of as the first (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# What httpx sends and decodes (gzip, deflate, and br or zstd where installed).
ACCEPT_ENCODING = HTTPX_ACCEPT_ENCODING.encode("ascii")
# h11's rules for a header field (httpx's client refuses the same): no line breaks.
HEADER_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
HEADER_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
# Framing is the client's: a caller's Content-Length could make a kept connection carry
# a second request (and its answer go to the next caller).
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


def json_body(value: Any) -> bytes:
    """The body httpx sends for ``json=``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def header_fields(
    address: httpx.URL, headers: Mapping[str, str], sends_json: bool
) -> dict[str, tuple[str, bytes]]:
    """The request's header fields by lower-case name, in httpx's order and with its
    defaults (a JSON body's type unless named); LocalProtocolError for a name or value
    that could break the request."""
    fields = {
        "host": ("Host", address.netloc),
        "accept": ("Accept", b"*/*"),
        "accept-encoding": ("Accept-Encoding", ACCEPT_ENCODING),
        "connection": ("Connection", b"keep-alive"),
        "user-agent": ("User-Agent", b"Flowgate/1"),
    }
    for name, value in headers.items():
        raw = value.encode("ascii")
        if not HEADER_NAME.fullmatch(name.encode("ascii")) or not HEADER_VALUE.fullmatch(raw):
            raise httpx.LocalProtocolError(f"illegal header {name!r}: {value!r}")
        if name.lower() not in FRAMING_HEADERS:
            fields[name.lower()] = (name, raw)
    if sends_json:
        fields.setdefault("content-type", ("Content-Type", b"application/json"))
    return fields


def redirect_location(answer: Answer) -> str | None:
    if answer.status not in REDIRECT_STATUSES:
        return None
    for name, value in answer.headers:
        if name.lower() == "location":
            return value
    return None


def redirected(
    method: str, address: httpx.URL, location: str, status: int, body: bytes | None
) -> tuple[str, httpx.URL, bytes | None]:
    """The next hop's method, URL and body, as httpx's client makes them."""
    try:
        url = httpx.URL(location)
    except (httpx.InvalidURL, ValueError) as error:
        raise httpx.RemoteProtocolError(f"invalid URL in the Location header: {error}") from None
    if url.scheme and not url.host:
        url = url.copy_with(host=address.host)
    if url.is_relative_url:
        url = address.join(url)
    if address.fragment and not url.fragment:
        url = url.copy_with(fragment=address.fragment)
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        return "GET", url, None
    return method, url, body


def redirect_fields(fields: dict[str, tuple[str, bytes]], url: httpx.URL, previous: Target) -> None:
    """Change the header fields for the next hop as httpx does: Authorization stays with
    the origin (or its upgrade to https), no cookies."""
    hop = target_check(url)
    if hop.origin != previous.origin:
        to_https = previous.scheme == "http" and hop.scheme == "https"
        if hop.host != previous.host or not (to_https and (previous.port, hop.port) == (80, 443)):
            fields.pop("authorization", None)
        fields["host"] = ("Host", url.netloc)
    fields.pop("cookie", None)
