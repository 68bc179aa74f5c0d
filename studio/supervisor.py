"""Runs the studio's processes on one machine and keeps them running.

A child that exits is started again after a pause that doubles with each quick exit
(1 s, 2 s, 4 s … 30 s; back to 1 s once a child has stayed up a minute), and the log says
so: one crashed worker no longer takes the whole studio down. Ctrl-C or SIGTERM stops
every child (SIGTERM, then SIGKILL after a grace period). Each child's output is passed
on line by line, prefixed with its name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

from .processes import ProcessSpec

FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class _Child:
    spec: ProcessSpec
    environment: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    pause: float = FIRST_PAUSE_SECONDS
    restart_at: float | None = None
    starts: int = 0
    readers: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        specs: list[ProcessSpec],
        environment: Mapping[str, str],
        *,
        say: Callable[[str], None],
        output: IO[str] | None = None,
        first_pause: float = FIRST_PAUSE_SECONDS,
    ) -> None:
        self.children = [
            _Child(spec, spec.child_environment(environment), pause=first_pause) for spec in specs
        ]
        self.say = say
        self.output = output or sys.stdout
        self.first_pause = first_pause
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._width = max((len(spec.name) for spec in specs), default=4)

    def run(self) -> int:
        """Start every child and keep them running until ``stop()``; then stop them."""
        for child in self.children:
            self._start(child)
        while not self._stopping.wait(0.2):
            for child in self.children:
                self._look_after(child)
        self._stop_all()
        return 0

    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop())

    def _look_after(self, child: _Child) -> None:
        if self._stopping.is_set():  # Ctrl-C reaches the children too: no restarts now
            return
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                self._start(child)
            return
        assert child.process is not None
        code = child.process.poll()
        if code is None:
            return
        if now - child.started_at > HEALTHY_AFTER_SECONDS:
            child.pause = self.first_pause
        self.say(f"{child.spec.name} exited with code {code}; restarting it in {child.pause:g} s")
        child.restart_at = now + child.pause
        child.pause = min(child.pause * 2, LONGEST_PAUSE_SECONDS)

    def _start(self, child: _Child) -> None:
        child.process = subprocess.Popen(
            child.spec.command,
            env=child.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
        child.started_at, child.starts = time.monotonic(), child.starts + 1
        if child.starts > 1:
            self.say(f"{child.spec.name} started again (pid {child.process.pid})")
        reader = threading.Thread(
            target=self._pass_on, args=(child.spec.name, child.process.stdout), daemon=True
        )
        reader.start()
        child.readers.append(reader)

    def _pass_on(self, name: str, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            with self._lock:
                self.output.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}")
                self.output.flush()

    def _stop_all(self) -> None:
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()


def _signal(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        os.kill(process.pid, signum)
