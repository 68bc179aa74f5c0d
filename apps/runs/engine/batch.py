"""One transaction for the outcomes of many steps (of one run or of a drain's batch)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.db import transaction

from ..models import StepRun
from . import effects


class Batch:
    """Groups the outcomes of steps into one transaction.

    Recomputing a step without side effects after a crash is harmless, so outcomes need
    not be committed one by one (each commit waits for a disk flush), nor written one by
    one: new outcome rows wait in ``pending`` and go to Postgres in one INSERT just before
    the commit. One batch serves many runs (a drain advances its runs in one transaction).
    Steps that call out are not run inside the batch: they are handed to the I/O layer
    once it has committed, so "this effect started" is durable before the effect happens.
    """

    def __init__(self) -> None:
        self._atomic: Any = None
        self.pending: list[StepRun] = []  # new outcome rows, inserted together on commit
        self.before_commit: list[Callable[[], None]] = []  # each run's last writes
        self.finishing: list[effects.Finish] = []  # runs that end, written together

    def __enter__(self) -> Batch:
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        atomic, self._atomic = self._atomic, None
        if atomic is None:  # a commit() failed and rolled back already: nothing is open
            return
        if exc_info[0] is None:
            try:
                self._flush()
            except BaseException:
                atomic.__exit__(*sys.exc_info())
                raise
        else:
            self.pending, self.finishing = [], []
        atomic.__exit__(*exc_info)

    def commit(self) -> None:
        """Commit what is pending and carry on in a new transaction."""
        self.__exit__(None, None, None)
        self.__enter__()

    def _flush(self) -> None:
        for write in self.before_commit:
            write()
        if self.pending:
            rows, self.pending = self.pending, []
            StepRun.objects.bulk_create(rows)
        if self.finishing:
            finishing, self.finishing = self.finishing, []
            effects.runs_finished(finishing)
