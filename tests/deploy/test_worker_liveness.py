"""The worker's liveness probe (``python -m studio.worker_health``), against a real worker:
fresh while it consumes, failing once the worker hangs (SIGSTOP) or was never started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.support.processes import REPOSITORY_ROOT, child_environment
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def probe(heartbeat: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio.worker_health", *extra],
        cwd=REPOSITORY_ROOT,
        env=child_environment(WORKER_HEARTBEAT_PATH=heartbeat, WORKER_HEARTBEAT_SECONDS="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_probe_passes_while_the_worker_consumes_and_fails_once_it_hangs(
    tmp_path, test_database_url
):
    heartbeat = str(tmp_path / "worker.alive")
    before = probe(heartbeat)
    assert before.returncode == 1
    assert "no heartbeat yet" in before.stderr

    worker = WorkerProcess(
        database_url=test_database_url,
        environment={"WORKER_HEARTBEAT_PATH": heartbeat, "WORKER_HEARTBEAT_SECONDS": "1"},
    ).start()
    try:
        # Several beats in a row: the file keeps being touched, not written once at start.
        first = os.stat(heartbeat).st_mtime
        wait_for(lambda: os.stat(heartbeat).st_mtime > first + 1.5, timeout=30)
        assert probe(heartbeat).returncode == 0

        # A hung worker (every process of it stopped) is reported dead within a few beats.
        tree = [
            psutil.Process(worker.process.pid),
            *psutil.Process(worker.process.pid).children(recursive=True),
        ]
        for process in tree:
            process.send_signal(signal.SIGSTOP)
        try:
            failed = wait_for(
                lambda: (result := probe(heartbeat)).returncode == 1 and result, timeout=30
            )
        finally:
            for process in tree:
                process.send_signal(signal.SIGCONT)
        assert "last heartbeat" in failed.stderr
        assert wait_for(lambda: probe(heartbeat).returncode == 0, timeout=30)
    finally:
        worker.stop()


def test_the_probe_refuses_without_a_heartbeat_file_configured():
    result = probe("")
    assert result.returncode == 1
    assert "WORKER_HEARTBEAT_PATH is not set" in result.stderr
