"""The run lifecycle: which status a run (and a step) may take from which, and every write
that changes one.

A transition is a named ``Move`` (claim, park, finish, cancel, ...) from a set of statuses
to another; the tables ``RUN_TRANSITIONS`` and ``STEP_TRANSITIONS`` are the union of the
moves, and nothing else changes a status. Python writes check the row's status against
its move and raise ``IllegalTransition`` otherwise; the engine's raw SQL (``claims.py``)
takes its status conditions and values from the moves here (``Move.guard_sql`` and
``Move.target_sql``), so it writes no status literal of its own. tests/runs/
test_lifecycle.py fails when code elsewhere assigns a status, updates one through the
ORM or writes a status literal in SQL.

Moves of a run (its status is written by the claim, the engine and the services):

==============  =============================  ==========================
move            from                           to
==============  =============================  ==========================
claim           queued, running                running
claim queued    queued                         running
requeue         queued, running                queued
park            running, waiting               running, waiting
finish          queued, running, waiting       succeeded, failed
resume          queued, running, waiting       queued
cancel          queued, running, waiting       cancelled
retry           failed                         queued
==============  =============================  ==========================

A new run is queued (the model's default); a sync webhook's inline run is written
claimed already (``claim_new``: the claim queued move before its insert), and ended
already when it ends in its first batch (``finish_unwritten``); succeeded and cancelled are final, and a
failed run goes back to the queue only when a person retries it from its failed step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.core import native_sql
from apps.core.batch_rows import new_row

from .models import TERMINAL_RUN_STATUSES, Run, RunStatus, StepRun, StepStatus


class IllegalTransition(Exception):
    """A status change the lifecycle does not allow (a bug in the caller, or a race the
    caller should have ruled out with a lock)."""

    def __init__(self, kind: str, move: str, current: str, target: str):
        self.kind, self.move, self.current, self.target = kind, move, current, target
        super().__init__(
            f"illegal {kind} transition: a {current or 'new'} {kind} cannot become "
            f"{target} ({move})"
        )


@dataclass(frozen=True)
class Move:
    """One named transition: from any status of ``sources`` to one of ``targets``."""

    name: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]

    def allows(self, current: str, target: str) -> bool:
        return current in self.sources and target in self.targets

    def guard_sql(self, column: str = "status") -> str:
        """The SQL condition "``column`` is one of the sources"."""
        return status_sql(*self.sources, column=column)

    def target_sql(self) -> str:
        """The SQL literal of the move's one target."""
        [target] = self.targets
        return _literal(target)


def status_sql(*statuses: str, column: str = "status") -> str:
    """The SQL condition "``column`` is one of ``statuses``" (``=`` for one status, so a
    partial index with that condition matches it), for reads as well as moves."""
    if len(statuses) == 1:
        return f"{column} = {_literal(statuses[0])}"
    return f"{column} IN ({', '.join(_literal(status) for status in statuses)})"


def _literal(status: str) -> str:
    # Our own enum values (lower-case words), so a quoted literal is safe.
    if not re.fullmatch(r"[a-z_]+", status):
        raise ValueError(f"not a status value: {status!r}")
    return f"'{status}'"


def _values(*statuses: str) -> tuple[str, ...]:
    return tuple(str(status) for status in statuses)


# --- runs --------------------------------------------------------------------------------
QUEUED, RUNNING, WAITING = _values(RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)
SUCCEEDED, FAILED, CANCELLED = _values(RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
ENDED = _values(*TERMINAL_RUN_STATUSES)
UNFINISHED = tuple(status for status in _values(*RunStatus) if status not in ENDED)

CLAIM = Move("claim", (QUEUED, RUNNING), (RUNNING,))
CLAIM_QUEUED = Move("claim queued", (QUEUED,), (RUNNING,))
REQUEUE = Move("requeue", (QUEUED, RUNNING), (QUEUED,))
PARK = Move("park", (RUNNING, WAITING), (RUNNING, WAITING))
FINISH = Move("finish", UNFINISHED, (SUCCEEDED, FAILED))
RESUME = Move("resume", UNFINISHED, (QUEUED,))
CANCEL = Move("cancel", UNFINISHED, (CANCELLED,))
RETRY = Move("retry", (FAILED,), (QUEUED,))
RUN_MOVES = (CLAIM, CLAIM_QUEUED, REQUEUE, PARK, FINISH, RESUME, CANCEL, RETRY)

# --- steps -------------------------------------------------------------------------------
NEW = ""  # the status of a step row not yet written
STEP_RUNNING, STEP_SUCCEEDED, STEP_FAILED = _values(
    StepStatus.RUNNING, StepStatus.SUCCEEDED, StepStatus.FAILED
)
STEP_WAITING, STEP_RESUMING, STEP_RETRY = _values(
    StepStatus.WAITING, StepStatus.RESUMING, StepStatus.RETRY_SCHEDULED
)
OUTCOMES = (STEP_SUCCEEDED, STEP_WAITING, STEP_FAILED)

STEP_START = Move("start", (NEW, STEP_RETRY), (STEP_RUNNING,))
STEP_RECORD = Move("record", (NEW, STEP_RUNNING, STEP_RETRY, STEP_RESUMING), OUTCOMES)
STEP_SKIP = Move("skip", (NEW,), _values(StepStatus.SKIPPED))
STEP_SCHEDULE_RETRY = Move("schedule retry", (NEW,), (STEP_RETRY,))
STEP_INTERRUPTED = Move("interrupted", (STEP_RUNNING,), (STEP_FAILED, str(StepStatus.IN_DOUBT)))
STEP_RESUME = Move("resume", (STEP_WAITING,), (STEP_RESUMING,))
STEP_CANCEL = Move(
    "cancel", (STEP_WAITING, STEP_RETRY, STEP_RESUMING), _values(StepStatus.CANCELLED)
)
STEP_MOVES = (
    STEP_START,
    STEP_RECORD,
    STEP_SKIP,
    STEP_SCHEDULE_RETRY,
    STEP_INTERRUPTED,
    STEP_RESUME,
    STEP_CANCEL,
)


def _table(moves: Iterable[Move], statuses: Iterable[str]) -> dict[str, frozenset[str]]:
    return {
        status: frozenset(
            target for move in moves if status in move.sources for target in move.targets
        )
        for status in statuses
    }


RUN_TRANSITIONS = _table(RUN_MOVES, _values(*RunStatus))
STEP_TRANSITIONS = _table(STEP_MOVES, (NEW, *_values(*StepStatus)))


def _check(kind: str, move: Move, current: str, target: str) -> None:
    if not move.allows(current, target):
        raise IllegalTransition(kind, move.name, current, target)


def _enter(run: Run, move: Move, target: str) -> None:
    _check("run", move, run.status, target)
    run.status = target


def step_to(row: StepRun, move: Move, target: str) -> None:
    """Give ``row`` (new, or as last read) the status ``target`` by ``move``; its caller
    writes it."""
    _check("step", move, row.status or NEW, target)
    row.status = target


def new_step(move: Move, target: str, **fields: Any) -> StepRun:
    """A step row not yet written, in status ``target`` (by ``move``)."""
    row = new_row(StepRun, **fields)
    step_to(row, move, target)
    return row


def claim_new(run: Run, owner: str, *, lease_seconds: int) -> None:
    """Take a new run (queued, not written yet) for ``owner`` as the drain's claim would:
    running, leased, one delivery. It is written so with its first steps (the sync
    webhook's inline path: ``engine.advance_new``), and needs no claim. The clock is this
    process's (a new run's ``created_at`` is too); every later claim reads the database's."""
    _enter(run, CLAIM_QUEUED, RUNNING)
    now = timezone.now()
    run.lease_owner, run.deliveries = owner, 1
    run.started_at, run.lease_expires_at = now, now + timedelta(seconds=lease_seconds)
    # What a claim's RETURNING adds to the row (the executor reads them).
    vars(run).update(database_now=now, has_steps=False)


def seen(run: Run, status: str) -> None:
    """The status another process gave ``run``, read again from the database."""
    run.status = status


# --- the writes of the services (each run locked by its caller) --------------------------
def cancel(run: Run, *, error: dict[str, Any]) -> None:
    """End ``run`` as cancelled; its steps that wait or are due again are cancelled too."""
    _enter(run, CANCEL, CANCELLED)
    run.finished_at, run.wake_at, run.error = timezone.now(), None, error
    run.save(update_fields=["status", "finished_at", "wake_at", "error", "updated_at"])
    StepRun.objects.filter(run=run, status__in=STEP_CANCEL.sources).update(
        status=STEP_CANCEL.targets[0]
    )


def retry(run: Run, failed: Iterable[StepRun]) -> None:
    """Queue a failed ``run`` again with a new attempt of each of its ``failed`` steps."""
    _enter(run, RETRY, QUEUED)
    for step in failed:
        new_step(
            STEP_SCHEDULE_RETRY,
            STEP_RETRY,
            run=run,
            node_id=step.node_id,
            block_type=step.block_type,
            block_version=step.block_version,
            attempt=step.attempt + 1,
            next_attempt_at=timezone.now(),
        ).save(force_insert=True)
    run.error, run.finished_at, run.deliveries = None, None, 0
    run.save(update_fields=["status", "error", "finished_at", "deliveries", "updated_at"])


def resume(run: Run, step: StepRun, signal: dict[str, Any]) -> None:
    """End ``step``'s wait with ``signal`` and queue ``run`` again."""
    step_to(step, STEP_RESUME, STEP_RESUMING)
    step.resume_signal = signal
    step.save(update_fields=["status", "resume_signal"])
    _enter(run, RESUME, QUEUED)
    run.wake_at = None
    Run.objects.filter(pk=run.pk).update(status=QUEUED, wake_at=None, updated_at=timezone.now())


# --- the writes of the engine ------------------------------------------------------------
def park(run: Run, status: str, *, wake_at: datetime | None) -> str | None:
    """Leave ``run`` running (a retry is due) or waiting until ``wake_at``, unless it
    is no longer running or waiting (a wait ended meanwhile and queued it, or it ended).
    Its status before, or None when it was not parked."""
    if status not in PARK.targets:
        raise IllegalTransition("run", PARK.name, run.status, status)
    updated = Run.objects.filter(pk=run.pk, status__in=PARK.sources).update(
        status=status, wake_at=wake_at, updated_at=timezone.now()
    )
    if not updated:
        return None
    before = run.status
    run.status, run.wake_at = status, wake_at
    return before


@dataclass
class Finish:
    """A run's end, waiting to be written with others' (see ``finish``)."""

    run: Run
    owner: str  # the lease to give back
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    progressed: bool = False  # the delivery count starts again
    response_changed: bool = False  # ``run.response`` is new


# One UPDATE ends many runs and gives their leases back. The table name is our own
# constant; every value is a bound parameter.
FINISH_SQL = f"""
    UPDATE {Run._meta.db_table} AS run
       SET status = ending.status, output = ending.output, error = ending.error,
           finished_at = %s, updated_at = %s, wake_at = NULL,
           lease_owner = '', lease_expires_at = NULL,
           deliveries = CASE WHEN ending.progressed THEN 0 ELSE run.deliveries END,
           response = CASE WHEN ending.response_changed THEN ending.response
                           ELSE run.response END
      FROM (VALUES {{rows}}) AS ending(id, status, output, error, progressed,
                                      response_changed, response)
     WHERE run.id = ending.id AND run.status = ANY(%s)
 RETURNING run.id
"""  # noqa: S608
FINISH_ROW = "(%s::uuid, %s, %s::jsonb, %s::jsonb, %s, %s, %s::jsonb)"


def finish(finishes: list[Finish]) -> set[Any]:
    """End the runs unless they ended already (a cancellation got there first), in one
    statement; the ids of those it ended (their rows in memory follow)."""
    for ending in finishes:
        if ending.status not in FINISH.targets:
            raise IllegalTransition("run", FINISH.name, ending.run.status, ending.status)
    now = timezone.now()
    params: list[Any] = [now, now]
    for ending in finishes:
        params += [
            ending.run.pk,
            ending.status,
            json_param(ending.output),
            json_param(ending.error),
            ending.progressed,
            ending.response_changed,
            json_param(ending.run.response),
        ]
    params.append(list(FINISH.sources))
    query = native_sql.many_rows(FINISH_SQL, FINISH_ROW, len(finishes))
    ended = {row[0] for row in native_sql.execute(query, params).fetchall()}
    for ending in finishes:
        if ending.run.pk in ended:
            run = ending.run
            run.status, run.output, run.error, run.finished_at = (
                ending.status,
                ending.output,
                ending.error,
                now,
            )
    return ended


def finish_unwritten(finishes: list[Finish]) -> None:
    """End new runs not written yet (``claim_new``'s) in memory, as ``finish`` would: their
    INSERT then writes them ended."""
    now = timezone.now()
    for ending in finishes:
        run = ending.run
        _enter(run, FINISH, ending.status)
        run.output, run.error, run.finished_at, run.wake_at = ending.output, ending.error, now, None
        run.lease_owner, run.lease_expires_at = "", None
        if ending.progressed:
            run.deliveries = 0


def json_param(value: Any) -> str | None:
    # SQL NULL for None, as the ORM writes a JSONField's None.
    return None if value is None else json.dumps(value)
