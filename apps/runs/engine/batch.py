"""One transaction for the outcomes of many steps (of one run or of a drain's batch)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.db import transaction

from apps.core import batch_rows, native_sql

from .. import lifecycle
from ..models import Run, StepRun
from . import effects

# What an attempt's outcome changes; one statement updates many rows (Django's
# bulk_update builds a CASE per field and row, which costs more CPU than the steps).
OUTCOME_FIELDS = (
    ("status", "text"), ("input", "jsonb"), ("output", "jsonb"), ("port", "text"),
    ("error", "jsonb"), ("meta", "jsonb"), ("started_at", "timestamptz"),
    ("finished_at", "timestamptz"), ("duration_ms", "float8"),
    ("next_attempt_at", "timestamptz"), ("wait_kind", "text"), ("wait_reference", "text"),
    ("wait_deadline", "timestamptz"), ("wait_state", "jsonb"), ("resume_signal", "jsonb"),
)  # fmt: skip
UPDATE_STEPS_SQL = f"""
    UPDATE {StepRun._meta.db_table} AS step
       SET {", ".join(f"{name} = outcome.{name}" for name, _ in OUTCOME_FIELDS)}
      FROM (VALUES {{rows}}) AS outcome(id, {", ".join(name for name, _ in OUTCOME_FIELDS)})
     WHERE step.id = outcome.id
"""  # noqa: S608
UPDATE_STEP_ROW = "(%s::bigint, " + ", ".join(f"%s::{kind}" for _, kind in OUTCOME_FIELDS) + ")"


class Batch:
    """Groups the outcomes of steps into one transaction.

    Recomputing a step without side effects after a crash is harmless, so outcomes need
    not be committed one by one (each commit waits for a disk flush), nor written one by
    one: new rows wait in ``inserts`` and go to Postgres in one INSERT just before the
    commit, changed ones in one UPDATE. One batch serves many runs (a drain advances its runs in one transaction).
    Steps that call out are not run inside the batch: they are handed to the I/O layer
    once it has committed, so "this effect started" is durable before the effect happens.
    """

    def __init__(self) -> None:
        self._atomic: Any = None
        # Step rows written on commit: new ones in one INSERT, changed ones in one UPDATE
        # (keyed by the object, so a row saved twice is written once, as it is last).
        self.inserts: dict[int, StepRun] = {}
        self.updates: dict[int, StepRun] = {}
        self.before_commit: list[Callable[[], None]] = []  # each run's last writes
        self.finishing: list[lifecycle.Finish] = []  # runs that end, written together
        # New runs (``claim_new``: a sync webhook's), written first when the batch commits,
        # or before a statement that reads or changes them (``write_new_runs``).
        self.new_runs: list[Run] = []

    def __enter__(self) -> Batch:
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.records = batch_rows.RowBatch().open()  # audit and decision-log rows
        return self

    def __exit__(self, *exc_info: Any) -> None:
        atomic, self._atomic = self._atomic, None
        if atomic is None:  # a commit() failed and rolled back already: nothing is open
            return
        if exc_info[0] is None:
            try:
                self._flush()
            except BaseException:
                self.records.close()
                atomic.__exit__(*sys.exc_info())
                raise
        else:
            self.inserts, self.updates, self.finishing, self.new_runs = {}, {}, [], []
        self.records.close()
        atomic.__exit__(*exc_info)

    def save(self, row: StepRun) -> None:
        """Write ``row`` with the batch's commit."""
        if row.pk is None:
            self.inserts[id(row)] = row
        else:
            self.updates[id(row)] = row

    def commit(self) -> None:
        """Commit what is pending and carry on in a new transaction."""
        self.__exit__(None, None, None)
        self.__enter__()

    def write_new_runs(self) -> None:
        """Write the new runs now, as they stand (leased, running)."""
        if self.new_runs:
            runs, self.new_runs = self.new_runs, []
            batch_rows.insert_rows(Run, runs)

    def _flush(self) -> None:
        ending: list[lifecycle.Finish] = []
        if self.new_runs:
            # A new run that ends in this batch is written ended: one INSERT, no UPDATE.
            new = {id(run) for run in self.new_runs}
            ending = [finish for finish in self.finishing if id(finish.run) in new]
            self.finishing = [finish for finish in self.finishing if id(finish.run) not in new]
            lifecycle.finish_unwritten(ending)
        # The batch's rows go in one round trip: a sync W1 run's INSERTs of its run, its
        # decision-log row, its audit event and its steps each waited for their answer.
        with native_sql.pipelined():
            self.write_new_runs()
            for write in self.before_commit:
                write()
            self.records.flush()
            if self.updates:
                rows, self.updates = list(self.updates.values()), {}
                _update_steps(rows)
            if self.inserts:
                rows, self.inserts = list(self.inserts.values()), {}
                batch_rows.insert_rows(StepRun, rows)
        effects.runs_ended([finish.run for finish in ending])
        if self.finishing:
            finishing, self.finishing = self.finishing, []
            effects.runs_finished(finishing)


def _update_steps(rows: list[StepRun]) -> None:
    params: list[Any] = []
    for row in rows:
        params.append(row.pk)
        for name, kind in OUTCOME_FIELDS:
            value = getattr(row, name)
            params.append(lifecycle.json_param(value) if kind == "jsonb" else value)
    native_sql.execute(native_sql.many_rows(UPDATE_STEPS_SQL, UPDATE_STEP_ROW, len(rows)), params)
