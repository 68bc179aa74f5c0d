"""The processes that make up a running Flowgate, in one place.

``manage.py studio`` runs them on one machine; deploy/ runs the same commands in containers.
Each entry is a name and a command line; the studio passes every process the same
environment.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

MANAGE_PY = str(Path(__file__).resolve().parent.parent / "manage.py")


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    command: list[str]


def studio_processes(*, host: str, port: int, worker_concurrency: int) -> list[ProcessSpec]:
    python = sys.executable
    return [
        ProcessSpec(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "studio.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--no-access-log",
                "--lifespan",
                "off",
            ],
        ),
        ProcessSpec(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "studio",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={worker_concurrency}",
                "--without-gossip",
                "--without-mingle",
            ],
        ),
        ProcessSpec(
            "beat",
            [python, "-m", "celery", "-A", "studio", "beat", "--loglevel=INFO"],
        ),
        # Starts runs of trigger.stream flows from Redis Streams (consumer groups).
        ProcessSpec("streams", [python, MANAGE_PY, "streams", "consume"]),
    ]
