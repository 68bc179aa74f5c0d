"""Bounded evaluation of CEL expressions whose cost their size does not bound.

Without comprehension macros a CEL expression evaluates each node once and every value it
builds is at most the sum of its leaves, so its cost is linear in its size and its data: it
runs in-process (microseconds). A macro (``map``, ``filter``, ``all``, ``exists``,
``exists_one``) repeats its body per element and can nest or chain, so a 180-character
expression can run for minutes or fill memory; the CEL library holds the GIL and cannot be
interrupted. Those run in a child process (``expression_worker``), one per thread, that has
a memory cap and is killed at the time budget (``EXPRESSION_TIMEOUT_MS``,
``EXPRESSION_MAX_MEMORY_MB``). Waiting on its pipe releases the GIL, so the web process
keeps answering meanwhile.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, cast

from .expression_worker import read_frame, write_frame

# Any mention of a macro's name (even in a string or a field name) takes the bounded path:
# a false positive costs a pipe round trip, a false negative could freeze the process.
MACRO = re.compile(r"\b(?:map|filter|all|exists|exists_one)\b")
STARTUP_SECONDS = 20.0
TIMED_OUT = object()
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


# One budget for all the expressions of a template or a tree of expressions (a step's
# config field): many expressions each just under the budget must not add up to minutes.
clock = time.monotonic


class _Deadline:
    """When a shared budget ends; moved back by the time spent starting an evaluator."""

    def __init__(self, at: float) -> None:
        self.at = at


_deadline: ContextVar[_Deadline | None] = ContextVar("expression_deadline", default=None)


@contextmanager
def shared_budget() -> Iterator[None]:
    """Evaluations inside share one time budget (the outermost ``with`` sets it)."""
    if _deadline.get() is not None:
        yield
        return
    token = _deadline.set(_Deadline(clock() + budget()[0]))
    try:
        yield
    finally:
        _deadline.reset(token)


class BudgetExceeded(Exception):
    """The expression ran past its time budget or memory budget; ``str()`` says which."""


def needs_bounds(source: str) -> bool:
    return MACRO.search(source) is not None


def budget() -> tuple[float, int]:
    """(seconds, bytes) an expression evaluated in the child may use."""
    from django.conf import settings

    flowgate = getattr(settings, "FLOWGATE", {})
    seconds = int(flowgate.get("EXPRESSION_TIMEOUT_MS", 1000)) / 1000
    return seconds, int(flowgate.get("EXPRESSION_MAX_MEMORY_MB", 256)) * 1024 * 1024


class _Evaluator:
    """One child process, used by one thread of one process."""

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apps.blocks.expression_worker", str(memory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPOSITORY_ROOT,
            env={"PATH": os.environ.get("PATH", ""), "RUST_BACKTRACE": "0"},
        )
        self.owner = os.getpid()
        if self._receive(STARTUP_SECONDS) != "ready":
            self.close()
            raise BudgetExceeded("the expression evaluator did not start")

    def _receive(self, seconds: float) -> Any:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], seconds)
        if not ready:
            return TIMED_OUT
        return read_frame(stdout)  # None at end of file: the child died

    def run(
        self, source: str, scope: dict[str, Any], seconds: float, left: float
    ) -> tuple[str, Any]:
        assert self.process.stdin is not None
        write_frame(self.process.stdin, (source, scope))
        answer = self._receive(left)
        if answer is not None and answer is not TIMED_OUT:
            return cast("tuple[str, Any]", answer)
        self.close()
        if answer is TIMED_OUT:
            raise BudgetExceeded(f"ran longer than the {seconds:g} s evaluation budget")
        if self.process.returncode in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGKILL):
            raise BudgetExceeded(
                f"used more than the {self.memory // (1024 * 1024)} MiB evaluation memory budget"
            )
        raise BudgetExceeded(f"the evaluator stopped (exit status {self.process.returncode})")

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


_local = threading.local()


def evaluate_bounded(source: str, scope: dict[str, Any]) -> tuple[str, Any]:
    """Evaluate in this thread's child: ("value", v), ("missing", field) or ("error", text).
    Raises BudgetExceeded when the time or memory budget is spent (the child is replaced)."""
    seconds, memory = budget()
    evaluator = _thread_evaluator(memory)
    deadline = _deadline.get()
    left = seconds if deadline is None else min(seconds, deadline.at - clock())
    if left <= 0:
        raise BudgetExceeded(f"ran longer than the {seconds:g} s evaluation budget")
    try:
        return evaluator.run(source, scope, seconds, left)
    except (BrokenPipeError, EOFError, OSError) as error:
        evaluator.close()
        raise BudgetExceeded(f"the evaluator stopped ({error})") from None
    except BudgetExceeded:
        _local.evaluator = None
        raise


def _thread_evaluator(memory: int) -> _Evaluator:
    """This thread's child, started when it has none (or one with another memory cap).
    Starting one (an interpreter and the CEL library: a second or more on a busy machine)
    is no expression's evaluation, so it does not spend a shared budget: the deadline moves
    back by the time it took. Otherwise the first macro of a template would leave the next
    one no time at all, an error that only a loaded machine shows."""
    evaluator: _Evaluator | None = getattr(_local, "evaluator", None)
    if evaluator is not None and evaluator.alive() and evaluator.memory == memory:
        return evaluator
    if evaluator is not None and evaluator.owner == os.getpid():
        evaluator.close()
    started = clock()
    evaluator = _local.evaluator = _Evaluator(memory)
    deadline = _deadline.get()
    if deadline is not None:
        deadline.at += clock() - started
    return evaluator
