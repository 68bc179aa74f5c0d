"""Statements the engine sends for every run, with Postgres's own placeholders.

Django's cursors (psycopg's ``ClientCursor``) quote each value into the SQL in Python,
and psycopg's own cursors find a statement's ``%s`` placeholders in Python again on each
execute once the statement is long (over 4096 characters or 50 values: psycopg caches
only shorter ones), as the engine's many-row INSERTs and UPDATEs are. Here a statement
written with ``%s`` is turned into ``$1, $2, ...`` once, and sent through a
``psycopg.RawCursor``: its values travel apart from it (bound by the server), and nothing
is parsed per execute.

``cursor_for`` wraps the cursor as Django's ``connection.cursor()`` does (queries counted
and logged, database errors wrapped in Django's), so callers see no difference.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

_PLACEHOLDER = re.compile(r"%[s%]")
_TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
_CURSORS = 64  # statements kept a cursor each, per connection (batches of many sizes: fewer)
_pipelines = threading.local()  # the ``pipelined`` block each thread is in, if any


@lru_cache(maxsize=256)
def native(statement: str) -> bytes:
    """``statement`` with ``%s`` numbered ``$1, $2, ...`` and ``%%`` as ``%``, encoded;
    the same bytes object each time (psycopg keeps a cursor's adaptation state only while
    the very same query object is executed again)."""
    return _numbered(statement)


@lru_cache(maxsize=512)
def many_rows(template: str, row: str, count: int) -> bytes:
    """``template`` with its ``{rows}`` as ``count`` times ``row`` (a VALUES list), as
    ``native`` makes it: built once per row count."""
    return _numbered(template.format(rows=", ".join([row] * count)))


def _numbered(statement: str) -> bytes:
    if "%%" in statement:  # rare: the slower, general rewrite
        numbers = iter(range(1, statement.count("%s") + 1))

        def replace(match: re.Match[str]) -> str:
            return "%" if match.group() == "%%" else f"${next(numbers)}"

        return _PLACEHOLDER.sub(replace, statement).encode()
    # A statement of hundreds of rows has thousands of placeholders: joined, not matched.
    first, *parts = statement.split("%s")
    numbered = [first]
    for number, part in enumerate(parts, 1):
        numbered += ("$", str(number), part)
    return "".join(numbered).encode()


def cursor_for(query: bytes, *, using: str = DEFAULT_DB_ALIAS) -> Any:
    """A Django-wrapped ``RawCursor`` to execute ``query`` (from ``native``) on.

    One psycopg cursor per connection and statement: a cursor keeps its adaptation state
    (the dumpers it looked up) only while it executes the very same query again, and a
    new one cost ~40 µs of CPU per statement. Never closed by their wrapper, they go with
    their connection (each thread has its own, as Django's do)."""
    db: Any = connections[using]  # Django's private cursor wrapping, as batch_rows used it
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = db.connection
    held: tuple[Any, dict[bytes, psycopg.RawCursor[Any]]] | None = getattr(
        db, "_native_cursors", None
    )
    if held is None or held[0] is not raw or len(held[1]) > _CURSORS:
        held = db._native_cursors = (raw, {})  # a new connection: its own cursors
    cursor = held[1].get(query)
    if cursor is None or cursor.closed:
        with db.wrap_database_errors:
            cursor = held[1][query] = psycopg.RawCursor(raw)
        _load_timestamps_as_django_does(db, cursor)
    return db._prepare_cursor(cursor)


def _load_timestamps_as_django_does(db: Any, cursor: psycopg.RawCursor[Any]) -> None:
    """Django's ``create_cursor``: the database's time zone for timestamps read, where the
    connection's loader has another."""
    loader = db.connection.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)
    if db.timezone != loader.timezone:
        register_tzloader(db.timezone, cursor)


def execute(query: bytes, params: list[Any], *, using: str = DEFAULT_DB_ALIAS) -> Any:
    """Execute ``query`` (from ``native`` or ``many_rows``) with ``params``; the wrapped
    cursor, to fetch from (in a ``pipelined`` block: from ``when_answered``)."""
    cursor = cursor_for(query, using=using)
    block: _Pipelined | None = getattr(_pipelines, "block", None)
    if block is not None and id(cursor.cursor) in block.awaited:
        block.answer_now()  # its last results are still awaited: read them first
    cursor.execute(query, params)
    return cursor


class _Pipelined:
    def __init__(self, db: Any, pipeline: psycopg.Pipeline) -> None:
        self.db, self.pipeline = db, pipeline
        self.readers: list[Callable[[], None]] = []
        self.awaited: set[int] = set()  # cursors whose results a reader awaits

    def answer_now(self) -> None:
        """Send what is queued, read every result, run the readers waiting for them."""
        with self.db.wrap_database_errors:
            self.pipeline.sync()
        self.read()

    def read(self) -> None:
        readers, self.readers, self.awaited = self.readers, [], set()
        for reader in readers:
            reader()


@contextmanager
def pipelined(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """The statements ``execute`` sends in the block go to Postgres together, and their
    answers come back together when it ends: one round trip (psycopg's pipeline mode),
    where each statement waited for its own (an INSERT of a run's step rows, of its
    decision-log row and of its audit event each cost one). For writes only: what reads a
    statement's rows (a RETURNING's) is given to ``when_answered``, which runs it at the
    block's end; a statement's error is raised there too."""
    if getattr(_pipelines, "block", None) is not None:
        yield  # within an outer block: answered at its end
        return
    db: Any = connections[using]
    db.ensure_connection()
    try:
        with db.wrap_database_errors, db.connection.pipeline() as pipeline:
            block = _pipelines.block = _Pipelined(db, pipeline)
            yield
    finally:
        _pipelines.block = None
    block.read()


def when_answered(cursor: Any, reader: Callable[[], None]) -> None:
    """Run ``reader`` (which fetches from ``cursor``, the wrapped cursor ``execute``
    returned) once the statement is answered: now, or at the end of the ``pipelined``
    block this thread is in."""
    block: _Pipelined | None = getattr(_pipelines, "block", None)
    if block is None:
        reader()
        return
    block.readers.append(reader)
    block.awaited.add(id(cursor.cursor))
