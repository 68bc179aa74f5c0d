"""Fixtures of the runs tests that call out: a real HTTP server on loopback, and the SSRF
guard's leave to call it."""

from __future__ import annotations

import pytest

from tests.support.http_server import CountingServer


@pytest.fixture
def loopback_allowed(settings):
    settings.FLOWGATE = {**settings.FLOWGATE, "SSRF_ALLOWLIST": ["127.0.0.1"]}


@pytest.fixture
def server():
    with CountingServer() as running:
        yield running
