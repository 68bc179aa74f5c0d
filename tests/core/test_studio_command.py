"""``manage.py studio`` starts the web server, a worker and beat, and Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.support.processes import (
    REPOSITORY_ROOT,
    child_environment,
    free_port,
    still_running,
    stop_process_group,
    tail,
    wait_for_http,
)

EXPECTED_ROLES = ("studio.serve", "worker", "beat", "streams consume")


def descendants_when_started(studio: psutil.Process, *, seconds: float) -> list[psutil.Process]:
    """The studio's process tree once a web server, a worker and beat are all running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tree = studio.children(recursive=True)
        commands = " ".join(" ".join(_cmdline(process)) for process in tree)
        if all(role in commands for role in EXPECTED_ROLES):
            return tree
        time.sleep(0.5)
    pytest.fail(f"the studio did not start {EXPECTED_ROLES}: {[_cmdline(p) for p in tree]}")


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.fixture
def studio(test_database_url):
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="flowgate-studio-", suffix=".log")[1])
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "studio",
                "--port",
                str(port),
                "--no-seed",
                "--concurrency",
                "1",
            ],
            cwd=REPOSITORY_ROOT,
            env=child_environment(DATABASE_URL=test_database_url),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, as in a terminal
        )
    yield process, port, log
    tree = (
        [process, *psutil.Process(process.pid).children(recursive=True)]
        if process.poll() is None
        else []
    )
    stop_process_group(process)
    for leftover in still_running(tree):
        leftover.kill()


def test_studio_answers_http_and_ctrl_c_stops_every_process_it_started(studio):
    process, port, log = studio
    wait_for_http(f"http://127.0.0.1:{port}/accounts/login/", process=process, seconds=120, log=log)
    tree = descendants_when_started(psutil.Process(process.pid), seconds=60)

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the studio did not exit after Ctrl-C:\n{tail(log)}")

    deadline = time.monotonic() + 15
    while still_running(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = [" ".join(_cmdline(p)) for p in still_running(tree)]
    assert survivors == [], f"processes outlived the studio:\n{tail(log)}"
    assert process.returncode in (0, 130), tail(log)
