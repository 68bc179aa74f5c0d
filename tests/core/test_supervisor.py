"""The studio's supervisor restarts a child that exits, with backoff, and says so."""

from __future__ import annotations

import io
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from studio.processes import ProcessSpec
from studio.supervisor import Supervisor


def wait_until(predicate, *, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition was not met in time"
        time.sleep(0.05)


def test_a_crashed_child_is_restarted_and_logged_while_the_others_keep_running():
    starts = Path(tempfile.mkstemp(prefix="flowgate-starts-")[1])
    crashing = ProcessSpec(
        "crashy",
        [
            sys.executable,
            "-c",
            f"open({str(starts)!r}, 'a').write('x'); print('up', flush=True); raise SystemExit(3)",
        ],
    )
    steady = ProcessSpec("steady", [sys.executable, "-c", "import time; time.sleep(120)"])
    said: list[str] = []
    output = io.StringIO()
    supervisor = Supervisor([crashing, steady], {}, say=said.append, output=output, first_pause=0.1)
    running = threading.Thread(target=supervisor.run)
    running.start()
    try:
        wait_until(lambda: len(starts.read_text()) >= 3)
        steady_process = supervisor.children[1].process
        assert steady_process is not None and steady_process.poll() is None
        assert supervisor.children[1].starts == 1
    finally:
        supervisor.stop()
        running.join(timeout=30)
    assert "crashy exited with code 3; restarting it in 0.1 s" in said
    assert "crashy exited with code 3; restarting it in 0.2 s" in said  # backing off
    assert "crashy | up" in output.getvalue()
    assert not psutil.pid_exists(steady_process.pid) or (
        psutil.Process(steady_process.pid).status() == psutil.STATUS_ZOMBIE
    )
