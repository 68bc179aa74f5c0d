"""Rows written with the engine's step batch instead of one INSERT each.

The engine advances steps in one transaction per batch (``apps.runs.engine.executor``).
Records that a step leaves behind and nobody reads back before the commit (a decision's
audit event, a policy evaluation's decision-log row) are held here while the batch is
open and go to Postgres in one INSERT per table just before its commit. Outside a batch
``insert`` writes at once, so callers need not know which case they are in.

A step that calls out runs on one of the I/O layer's threads (``apps.runs.engine.io``),
outside any transaction: there a *deferred* batch holds its rows (a model call's monitoring
sample, a policy decision's log row) and the engine inserts them with the batch that
records the step's outcome, so such a step costs no connection or commit of its own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.base import ModelState
from django.db.models.expressions import DatabaseDefault
from django.db.models.signals import post_init, pre_init

from . import native_sql

M = TypeVar("M", bound=models.Model)

_state = threading.local()


class RowBatch:
    """The rows held for one transaction of the engine (one per thread at a time)."""

    def __init__(self, *, deferred: bool = False) -> None:
        self.rows: list[models.Model] = []
        self._outer: RowBatch | None = None
        # Held for a transaction on another thread (an I/O call's outcome batch), so held
        # whether or not this thread is in a transaction.
        self.deferred = deferred

    def open(self) -> RowBatch:
        self._outer = getattr(_state, "batch", None)
        _state.batch = self
        return self

    def close(self) -> None:
        """Stop holding rows (those not flushed were rolled back with their batch)."""
        self.rows = []
        if getattr(_state, "batch", None) is self:
            _state.batch = self._outer

    def hold(self, rows: list[models.Model]) -> None:
        """Write ``rows`` (held by a deferred batch elsewhere) with this batch."""
        self.rows.extend(rows)

    def flush(self) -> None:
        """Insert what is held: one statement per table, in the order first held."""
        rows, self.rows = self.rows, []
        write(rows)


def write(rows: list[models.Model]) -> None:
    """Insert ``rows`` now: one statement per table, in the order first seen."""
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for row in rows:
        by_model.setdefault(type(row), []).append(row)
    for model, group in by_model.items():
        insert_rows(model, group)


# Fields whose value is saved as it is when it has one of these types (exactly: Django's
# ``get_db_prep_save`` would return it unchanged), or is None. Integers and JSON are saved
# as Django saves them (typed by size; wrapped for psycopg's JSON dumper) without the
# generic work around that; any other value, and every other field (a timestamp set on
# save, a subclass with conversions of its own, JSON with an encoder of its own), goes
# through ``get_db_prep_save``, whose generic work was a tenth of a web process's CPU
# under a batch of sync webhooks.
_AS_IS: dict[type[models.Field], tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
    models.FloatField: (float,),
    models.UUIDField: (uuid.UUID,),
    models.DateTimeField: (datetime,),  # aware ones only (below)
    models.ForeignKey: (uuid.UUID,),  # (integers are typed by size, as Django types them)
}
_JSON_TYPES = (dict, list, str, int, float, bool)
# What a saver returns for a value it leaves to ``get_db_prep_save``.
_CONVERT = object()

Saver = Callable[[Any], Any]


def _saver(field: models.Field) -> Saver | None:
    """How ``field``'s common values are saved without ``get_db_prep_save`` (None: all go
    through it)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return None  # set on save
    if types := _AS_IS.get(type(field), ()):
        return lambda value: value if value is None or _as_is(value, types) else _CONVERT
    sized = getattr(connection.ops, "integerfield_type_map", {}).get(field.get_internal_type())
    if sized is not None and isinstance(field, models.IntegerField):
        return lambda value: (
            value if value is None else sized(value) if type(value) is int else _CONVERT
        )
    if type(field) is models.JSONField and field.encoder is None:
        adapt = connection.ops.adapt_json_value
        return lambda value: (
            value
            if value is None
            else adapt(value, None)
            if type(value) in _JSON_TYPES
            else _CONVERT
        )
    return None


@dataclass(frozen=True)
class _Insert:
    """A model's INSERT, built once: the columns written, and those the database fills."""

    written: tuple[models.Field, ...]
    returned: tuple[models.Field, ...]
    sql: str  # with {rows}
    row: str
    # Per written field: the attribute and its saver (None: ``get_db_prep_save``).
    savers: tuple[tuple[str, Saver | None], ...] = ()


@cache
def _insert_of(model: type[models.Model]) -> _Insert:
    meta, quote = model._meta, connection.ops.quote_name
    returned = tuple(meta.db_returning_fields)
    written = tuple(field for field in meta.local_concrete_fields if field not in returned)
    columns = ", ".join(quote(str(field.column)) for field in written)
    # Names from the model's own metadata, quoted; every value is a bound parameter.
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {{rows}}"  # noqa: S608
    if returned:
        sql += f" RETURNING {', '.join(quote(str(field.column)) for field in returned)}"
    row = "(" + ", ".join(["%s"] * len(written)) + ")"
    savers = tuple((field.attname, _saver(field)) for field in written)
    return _Insert(written, returned, sql, row, savers)


def insert_rows(model: type[M], rows: list[M], *, ignore_conflicts: bool = False) -> None:
    """Insert ``rows`` (new) in one statement, as ``bulk_create`` does (each field's saved
    value, the columns the database fills read back), from a statement built once per
    model: bulk_create's compiler, and the arrays of its UNNEST that psycopg quotes in
    Python, cost more CPU than the engine's steps themselves. ``ignore_conflicts``: a row
    that breaks a unique constraint is left out (``ON CONFLICT DO NOTHING``), for models
    whose columns the caller fills all (nothing read back)."""
    if not rows:
        return
    plan = _insert_of(model)
    if ignore_conflicts and plan.returned:
        model._default_manager.bulk_create(rows, ignore_conflicts=True)
        return
    for row in rows:
        if any(_given(getattr(row, field.attname)) for field in plan.returned):
            model._default_manager.bulk_create(rows)  # a value the database would fill
            return
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy looks it up
    params: list[Any] = []
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        values = row.__dict__
        for field, (attname, saver) in zip(plan.written, plan.savers, strict=True):
            value = _CONVERT if saver is None else saver(values.get(attname, _CONVERT))
            if value is _CONVERT:
                value = field.get_db_prep_save(field.pre_save(row, True), db)
            params.append(value)
    sql = plan.sql + " ON CONFLICT DO NOTHING" if ignore_conflicts else plan.sql
    cursor = native_sql.execute(native_sql.many_rows(sql, plan.row, len(rows)), params)

    def fill() -> None:
        filled = cursor.fetchall() if plan.returned else [()] * len(rows)
        for row, values in zip(rows, filled, strict=True):
            for field, value in zip(plan.returned, values, strict=True):
                setattr(row, field.attname, value)
            row._state.adding, row._state.db = False, db.alias

    native_sql.when_answered(cursor, fill)


def _as_is(value: Any, types: tuple[type, ...]) -> bool:
    kind = type(value)
    return kind in types and (kind is not datetime or value.tzinfo is not None)


def _given(value: Any) -> bool:
    return value is not None and not isinstance(value, DatabaseDefault)


@dataclass(frozen=True)
class _Construction:
    """How ``new_row`` builds a model's instances."""

    defaults: dict[str, Any]  # each concrete field's attname, its default (made once)
    computed: tuple[tuple[str, models.Field], ...]  # the fields whose default is made per row
    relations: frozenset[str]  # the foreign keys' names
    attnames: frozenset[str]


@cache
def _construction_of(model: type[models.Model]) -> _Construction:
    fields = model._meta.concrete_fields
    defaults: dict[str, Any] = {}
    computed: list[tuple[str, models.Field]] = []
    for field in fields:
        if (field.has_default() and callable(field.default)) or field.has_db_default():
            computed.append((field.attname, field))
        else:
            # A non-callable default is one shared object in Django too (fields.E010 warns
            # against a mutable one); no default gives None or "", both immutable.
            defaults[field.attname] = field.get_default()
    relations = frozenset(field.name for field in fields if isinstance(field, models.ForeignKey))
    attnames = frozenset(field.attname for field in fields)
    return _Construction(defaults, tuple(computed), relations, attnames)


def new_row(model: type[M], **values: Any) -> M:
    """``model(**values)`` for the engine's hot paths: the same instance, its fields set
    directly. Django's ``__init__`` looks each field up among the keywords and works out
    its default (9 µs for a step row of 22 fields, against 4.5 µs here; a sync run makes
    about ten rows). ``values`` name fields by attname, or a foreign key by its name with
    an instance (or None), as keywords do. A model with ``pre_init``/``post_init``
    receivers is built by ``__init__``, so they run."""
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model(**values)
    plan = _construction_of(model)
    row = model.__new__(model)
    fields = row.__dict__
    fields["_state"] = ModelState()
    fields.update(plan.defaults)
    for attname, field in plan.computed:
        fields[attname] = field.get_default()
    for name, value in values.items():
        if name in plan.relations:
            setattr(row, name, value)  # Django's descriptor: the key, the cache, the router
        elif name in plan.attnames:
            fields[name] = value
        else:
            raise TypeError(f"{model.__name__}() got an unexpected field {name!r}")
    return row


def insert(row: M) -> M:
    """Insert ``row`` with the open batch, or now when none is open on this thread."""
    batch: RowBatch | None = getattr(_state, "batch", None)
    if batch is not None and not batch.deferred and not connection.in_atomic_block:
        batch.close()  # its transaction ended without it (a bug): never hold rows past it
        batch = None
    if batch is None:
        row.save(force_insert=True)
    else:
        batch.rows.append(row)
    return row
