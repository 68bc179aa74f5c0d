"""A worker's liveness, for probes that must tell a hung worker from a busy one.

A Celery worker whose process is up can still be useless: its event loop blocked, or its
broker connection lost for good. With ``WORKER_HEARTBEAT_PATH`` set, every worker touches
that file every ``WORKER_HEARTBEAT_SECONDS`` from its consumer's own timer, which runs in the
loop that receives tasks and only while the consumer is connected; a long task runs in a
pool child and does not stop it. ``python -m studio.worker_health`` (the Kubernetes and
compose liveness probe) exits 0 while the file is fresh and 1, with one line saying why,
once it is older than three intervals (``--max-age`` to change). It reads the environment
only, so a probe costs no Django start-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from celery import bootsteps

from studio.env import ConfigurationError, env_float, env_str


def heartbeat_file() -> str:
    return env_str("WORKER_HEARTBEAT_PATH", "")


def heartbeat_seconds() -> float:
    seconds = env_float("WORKER_HEARTBEAT_SECONDS", 10.0)
    if seconds <= 0:
        raise ConfigurationError(f"WORKER_HEARTBEAT_SECONDS must be above 0, got {seconds}")
    return seconds


def touch(path: str) -> None:
    Path(path).touch()


class Heartbeat(bootsteps.StartStopStep):
    """A consumer step: it starts once the worker consumes and stops when it no longer does
    (connection lost, shutdown), leaving the file to go stale."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer: object, **kwargs: object) -> None:
        super().__init__(consumer, **kwargs)
        self.path = heartbeat_file()
        self.interval = heartbeat_seconds()
        self.entry: object | None = None

    def start(self, consumer: object) -> None:
        if not self.path:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        touch(self.path)
        self.entry = consumer.timer.call_repeatedly(self.interval, touch, (self.path,))  # type: ignore[attr-defined]

    def stop(self, consumer: object) -> None:
        if self.entry is not None:
            self.entry.cancel()  # type: ignore[attr-defined]
            self.entry = None

    shutdown = stop


def heartbeat_problem(path: str, *, max_age: float, now: float | None = None) -> str | None:
    """Why the worker writing ``path`` is not alive, or None when it is."""
    if not path:
        return "WORKER_HEARTBEAT_PATH is not set"
    try:
        age = (now if now is not None else time.time()) - Path(path).stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat yet at {path}"
    if age > max_age:
        return f"last heartbeat {age:.0f}s ago (limit {max_age:.0f}s) at {path}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 while the worker's heartbeat is fresh.")
    parser.add_argument("--max-age", type=float, default=None, help="seconds; 3 intervals")
    arguments = parser.parse_args(argv)
    try:
        max_age = arguments.max_age or 3 * heartbeat_seconds()
        problem = heartbeat_problem(heartbeat_file(), max_age=max_age)
    except ConfigurationError as error:
        problem = str(error)
    if problem:
        sys.stderr.write(f"worker not alive: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
