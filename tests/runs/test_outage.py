"""Postgres down: a webhook caller gets a JSON 503 with Retry-After, never an HTML 500.

A real web server (uvicorn, the studio's ASGI application) runs in a subprocess whose
database is a loopback port nobody listens on: every connection attempt is refused.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from studio import serve
from tests.support.processes import (
    REPOSITORY_ROOT,
    child_environment,
    free_ports,
    stop_process_group,
    tail,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def web_without_database():
    web_port, database_port = free_ports(2)
    log = Path(tempfile.mkstemp(prefix="flowgate-web-", suffix=".log")[1])
    environment = child_environment(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{database_port}/flowgate",
        DATABASE_POOL="true",
    )
    command = serve.command(host="127.0.0.1", port=web_port)
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{web_port}"
    try:
        _wait_until_listening(url, process, log)
        yield url
    finally:
        stop_process_group(process, grace=5)


def _wait_until_listening(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited:\n{tail(log)}")
        try:
            httpx.get(f"{url}/api/not-a-page", timeout=2)  # answers without the database
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"the web server did not listen:\n{tail(log)}")


def test_a_webhook_during_a_database_outage_is_a_json_503_to_retry(web_without_database):
    response = httpx.post(f"{web_without_database}/hooks/some-token", json={"order": 1}, timeout=30)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "unavailable"
