"""The I/O layer: steps that call out (HTTP, the model service, SQL, mail) run here.

Model: a bounded pool of threads per process (``IO_THREADS``). Blocks keep one synchronous
contract (``execute``) and their drivers (httpx, psycopg, smtplib) block in C with the GIL
released, so a thread per call in flight gives real concurrency without an async twin of
every connector. The engine's own state changes stay on the caller's thread, in its batch
transaction: a call is launched only after the batch that marked it started committed, and
its outcome is recorded by the caller in a later batch.

Fairness: each call takes one slot per key it names (its destination host or connection,
its flow, its workspace), each key with a limit (``IO_MAX_CALLS_PER_HOST`` …, or the flow's
own ``concurrency.limit``). A call whose slot is taken waits in its session while others
go ahead, so a slow API fills its own slots and nobody else's.

Timeouts: the caller waits for a call up to its step's timeout, then records StepTimeout
and abandons it; the thread ends when the driver's own timeout does (the call keeps its
slots until then, so a hung host cannot take the whole pool). Nothing is interrupted
mid-call (no signal is raised into a database driver).

Rows a call's block writes (a model step's monitoring sample, a policy decision's log row,
an audit event) are held on its thread (``apps.core.batch_rows``, deferred) and handed to
the caller, which inserts them with the batch that records the step's outcome: no
connection or commit of their own, and they roll back with it. A call abandoned at its
deadline writes its rows itself when it ends, since nobody records them then.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from apps.core import batch_rows

from .policy import StepTimeout, engine_setting

Slot = tuple[str, int]  # (key, limit)
_WAKE = object()  # put among the ended calls' futures by ``InFlight.wake``


class Limiter:
    """Calls in flight per key, across every session of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def try_acquire(self, slots: tuple[Slot, ...]) -> bool:
        with self._lock:
            if any(self._counts[key] >= limit for key, limit in slots):
                return False
            for key, _ in slots:
                self._counts[key] += 1
            return True

    def release(self, slots: tuple[Slot, ...]) -> None:
        with self._lock:
            for key, _ in slots:
                self._counts[key] -= 1

    def in_use(self, key: str) -> int:
        with self._lock:
            return self._counts[key]


@dataclass(eq=False)
class Call:
    """One call-out: what to run, for whom, within how long, and how it ended."""

    function: Callable[[], Any]
    timeout: float
    slots: tuple[Slot, ...]
    owner: Any = None  # whoever records the outcome (a run's executor)
    step: Any = None  # what the owner needs to record it
    priority: int = 0
    deadline: float = 0.0
    elapsed: float = 0.0
    result: Any = None
    error: BaseException | None = None
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    _rows: list[Any] = field(default_factory=list)
    _handover: threading.Lock = field(default_factory=threading.Lock)
    _taken: bool = False

    def take_rows(self) -> list[Any]:
        """The rows the call's block wrote, for the batch recording its outcome. A call
        still running (abandoned at its deadline) writes its own when it ends."""
        with self._handover:
            self._taken = True
            rows, self._rows = self._rows, []
            return rows

    def _hand_over(self, rows: list[Any]) -> bool:
        """On the call's thread: give its rows to the caller; False when the caller has
        recorded the call already (it was abandoned), and the rows are this thread's to write."""
        with self._handover:
            if self._taken:
                return False
            self._rows = rows
            return True


class Pool:
    """The process's threads for calls, made on first use (after a worker forks)."""

    def __init__(self, size: int) -> None:
        self.executor = ThreadPoolExecutor(size, thread_name_prefix="flowgate-io")
        self.limiter = Limiter()


_pool: Pool | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def pool() -> Pool:
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = Pool(int(engine_setting("IO_THREADS"))), os.getpid()
        return _pool


class InFlight:
    """One session's calls: waiting for a slot, running, ended.

    ``shared`` is the caller's database connection when the caller runs inside a
    transaction it does not own (tests, eager tasks): calls then read through it, as the
    caller would, instead of opening connections that cannot see its uncommitted rows."""

    def __init__(self, shared: BaseDatabaseWrapper | None = None) -> None:
        self.pool = pool()
        self.shared = shared
        self.waiting: list[Call] = []
        self.running: dict[Future[Any], Call] = {}
        # Each call's future, put here as it ends: a wait takes what ended, where
        # ``concurrent.futures.wait`` hooked a waiter onto every call in flight (hundreds,
        # under load) twice per wait, and the cost of a wait grew with the backlog.
        self.ended: queue.SimpleQueue[Future[Any] | object] = queue.SimpleQueue()

    def __len__(self) -> int:
        return len(self.waiting) + len(self.running)

    def add(self, call: Call) -> None:
        self.waiting.append(call)

    def wake(self) -> None:
        """End a ``wait`` of another thread now (with the calls that ended so far): the
        waiter has other work (the webhook batcher: new deliveries)."""
        self.ended.put(_WAKE)

    def discard(self, owners: set[Any]) -> None:
        """Forget calls not launched yet whose owners' batch was rolled back."""
        self.waiting = [call for call in self.waiting if call.owner not in owners]

    def launch(self) -> None:
        """Start every waiting call whose slots are free, higher priority first."""
        if not self.waiting:
            return
        self.waiting.sort(key=lambda call: -call.priority)
        still_waiting = []
        for call in self.waiting:
            if self.pool.limiter.try_acquire(call.slots):
                self._submit(call)
            else:
                still_waiting.append(call)
        self.waiting = still_waiting

    def _submit(self, call: Call) -> None:
        call.deadline = time.monotonic() + call.timeout
        if self.shared is not None:
            self.shared.inc_thread_sharing()
        future = self.pool.executor.submit(call.context.run, self._perform, call)
        limiter, slots, shared, ended_calls = self.pool.limiter, call.slots, self.shared, self.ended

        def ended(done: Future[Any]) -> None:
            limiter.release(slots)
            if shared is not None:
                shared.dec_thread_sharing()
            ended_calls.put(done)

        future.add_done_callback(ended)
        self.running[future] = call

    def _perform(self, call: Call) -> Any:
        if self.shared is not None:
            connections["default"] = self.shared
        started = time.perf_counter()
        held = batch_rows.RowBatch(deferred=True).open()
        try:
            return call.function()
        finally:
            call.elapsed = time.perf_counter() - started
            rows = held.rows
            held.close()
            if rows and not call._hand_over(rows):
                with transaction.atomic():
                    batch_rows.write(rows)
            if self.shared is not None:
                del connections["default"]
            else:  # a block that read the database (a connection's secret) lets go of it
                for opened in connections.all(initialized_only=True):
                    opened.close()

    def wait(self, timeout: float) -> list[Call]:
        """Calls that ended (or ran past their deadline) within ``timeout`` seconds; those
        ending within ``IO_GATHER_SECONDS`` of the first come along, to be recorded in one
        transaction."""
        self.launch()
        if not self.running:
            time.sleep(min(timeout, 0.01))  # every slot is held by another session's call
            return []
        next_deadline = min(call.deadline for call in self.running.values())
        limit = max(0.0, min(timeout, next_deadline - time.monotonic()))
        done = self._take_ended(until=time.monotonic() + limit, wanted=1)
        if done and len(done) < len(self.running):
            gather = float(engine_setting("IO_GATHER_SECONDS"))
            others = len(self.running) - len(done)
            done |= self._take_ended(until=time.monotonic() + gather, wanted=others)
        ended = []
        for future in done:
            call = self.running.pop(future)
            try:
                call.result = future.result()
            except BaseException as error:  # recorded as the step's failure by its owner
                call.error = error
            ended.append(call)
        now = time.monotonic()
        for future, call in list(self.running.items()):
            if now >= call.deadline:  # abandoned: its thread ends with the driver's timeout
                del self.running[future]
                call.error = StepTimeout(call.timeout)
                ended.append(call)
        return ended

    def _take_ended(self, *, until: float, wanted: int) -> set[Future[Any]]:
        """The running calls' futures that end by ``until`` (those that ended already
        included), taken as soon as ``wanted`` of them have ended, or a ``wake`` came."""
        taken: set[Future[Any]] = set()
        while True:
            try:
                future = self.ended.get_nowait()
            except queue.Empty:
                if len(taken) >= wanted or (left := until - time.monotonic()) <= 0:
                    return taken
                try:
                    future = self.ended.get(timeout=left)
                except queue.Empty:
                    return taken
            if future is _WAKE:
                return taken
            if future in self.running:  # not one abandoned at its deadline
                taken.add(future)


def slots_for(
    *, host: str, flow_id: Any, workspace_id: Any, flow_limit: int | None
) -> tuple[Slot, ...]:
    """The keys a call holds while in flight, each with its limit."""
    per_flow = int(engine_setting("IO_MAX_CALLS_PER_FLOW"))
    if flow_limit:
        per_flow = min(per_flow, flow_limit)
    return (
        (f"host:{host}", int(engine_setting("IO_MAX_CALLS_PER_HOST"))),
        (f"flow:{flow_id}", per_flow),
        (f"workspace:{workspace_id}", int(engine_setting("IO_MAX_CALLS_PER_WORKSPACE"))),
    )
