"""Personas, an OPA-compatible server process, and a fixture that runs a test on both
policy backends (embedded regorus, and the OPA REST path against that server)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from apps.accounts.models import Role
from apps.accounts.services import membership_set, user_create, workspace_create
from apps.policies.engine import EmbeddedBackend
from tests.support.processes import free_port


def start_opa_stub(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("opa_stub_server.py")), str(port)],
        stdout=subprocess.PIPE,
        env={"RUST_BACKTRACE": "0", "PATH": "/usr/bin:/bin"},
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the OPA stub server did not start")


@pytest.fixture(scope="session")
def opa_server():
    port = free_port()  # in this run's test range: parallel runs must not share a stub
    process = start_opa_stub(port)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=5)


@pytest.fixture(params=["embedded", "opa"])
def backend(request, settings):
    """The engine backend under test; for "opa" the settings point at the stub server, so
    services (publish, evaluate) use it too."""
    if request.param == "embedded":
        settings.FLOWGATE = {**settings.FLOWGATE, "OPA_URL": ""}
        return EmbeddedBackend()
    url = request.getfixturevalue("opa_server")
    settings.FLOWGATE = {**settings.FLOWGATE, "OPA_URL": url}
    from apps.policies.engine import current_backend

    return current_backend()


@pytest.fixture
def workspace(db):
    return workspace_create(slug="acme", name="Acme")


@pytest.fixture
def other_workspace(db):
    return workspace_create(slug="other", name="Other")


def _member(username: str, workspace, role: Role):
    user = user_create(username=username, password="pw-" + username)
    membership_set(user=user, workspace=workspace, role=role)
    return user


@pytest.fixture
def owner(workspace):
    return _member("owner", workspace, Role.ADMIN)


@pytest.fixture
def member(workspace):
    return _member("member", workspace, Role.BUILDER)


@pytest.fixture
def outsider(other_workspace):
    return _member("outsider", other_workspace, Role.ADMIN)
