"""A real Celery worker in a subprocess, for tests that need tasks executed for real.

``WorkerProcess(database_url=...)`` runs ``celery -A studio worker --pool=prefork`` with the
test settings against the given database and the tests' Redis. ``start()`` returns once the
worker has answered a ``core.ping`` task; ``kill()`` SIGKILLs it (and its pool children) as a
crash would; ``stop()`` shuts it down warmly. Several may run at once (each has its own name). It consumes
the default queue, or ``CELERY_QUEUE`` when ``environment`` sets one.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery.exceptions import TimeoutError as CeleryTimeout

from studio.celery import app as celery_app

from .processes import (
    REPOSITORY_ROOT,
    child_environment,
    kill_process_group,
    stop_process_group,
    tail,
)


class WorkerStartError(RuntimeError):
    """The worker exited or did not answer a ping in time."""


class WorkerProcess:
    def __init__(
        self,
        *,
        database_url: str,
        concurrency: int = 1,
        queues: tuple[str, ...] = (),
        environment: dict[str, str] | None = None,
    ) -> None:
        identifier = uuid.uuid4().hex[:8]
        self.name = f"test-{identifier}@%h"
        # Start-up pings go to a queue only this worker reads, so another running worker
        # cannot answer for it.
        self.private_queue = f"test-worker.{identifier}"
        self.database_url = database_url
        self.concurrency = concurrency
        self.queues = queues
        self.environment = environment or {}
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="flowgate-worker-", suffix=".log")[1])

    @property
    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "studio",
            "worker",
            "--pool=prefork",
            f"--concurrency={self.concurrency}",
            "--loglevel=INFO",
            "--hostname",
            self.name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        default_queue = self.environment.get("CELERY_QUEUE", celery_app.conf.task_default_queue)
        queues = [*(self.queues or (default_queue,)), self.private_queue]
        return [*command, f"--queues={','.join(queues)}"]

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 90) -> WorkerProcess:
        """Start the worker and wait until it has executed a ``core.ping``. It consumes the
        default queue (or ``queues``) plus a private queue used for that ping."""
        if self.is_running:
            raise WorkerStartError("this worker is already running")
        environment = child_environment(DATABASE_URL=self.database_url, **self.environment)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPOSITORY_ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_for_ping(timeout)
        return self

    def _wait_for_ping(self, timeout: float) -> None:
        token = uuid.uuid4().hex
        result = celery_app.send_task("core.ping", args=[token], queue=self.private_queue)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running:
                raise WorkerStartError(f"worker exited during start-up:\n{self.log}")
            try:
                if result.get(timeout=1) == f"pong:{token}":
                    return
            except CeleryTimeout:
                continue
        self.stop()
        raise WorkerStartError(f"worker did not answer core.ping in {timeout}s:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (a crash, an OOM kill)."""
        if self.process is not None:
            kill_process_group(self.process)

    def stop(self, *, grace: float = 20) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL after ``grace`` seconds."""
        if self.process is not None:
            stop_process_group(self.process, grace=grace)

    @property
    def log(self) -> str:
        return tail(self.log_path)

    def __enter__(self) -> WorkerProcess:
        return self.start() if not self.is_running else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
