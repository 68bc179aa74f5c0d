"""Leases on runs: claiming one run or a batch of queued runs, renewing, giving back.

A lease is short (``RUN_LEASE_SECONDS``) and renewed while its holder works on the run
(``renew_leases``), so a worker that dies leaves its runs idle for one short lease at most.
The SQL is built from our own constants and the moves of the run lifecycle
(``apps/runs/lifecycle.py``: which statuses a claim or a requeue takes a run from and to);
every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F
from django.db.models.functions import Greatest

from apps.core import native_sql

from .. import lifecycle
from ..models import Run, RunStatus, StepRun
from .policy import engine_setting

RUN = Run._meta.db_table

# One round trip takes the lease and reads the run; ``has_steps`` spares a new run the
# look-up of steps.
CLAIM_SQL = f"""
    UPDATE {RUN} AS run
       SET lease_owner = %s, lease_expires_at = now() + make_interval(secs => %s),
           deliveries = deliveries + 1,
           status = {lifecycle.CLAIM.target_sql()},
           started_at = COALESCE(started_at, now()), updated_at = now()
     WHERE id = %s AND {lifecycle.CLAIM.guard_sql()}
       AND (lease_expires_at IS NULL OR lease_expires_at < now())
       AND concurrency_limit IS NULL
 RETURNING run.*, now() AS database_now,
           EXISTS (SELECT 1 FROM {StepRun._meta.db_table} WHERE run_id = run.id) AS has_steps
"""  # noqa: S608

# The claim of the drain: the oldest queued runs nobody holds, skipping rows another
# drain has locked, so concurrent drains never wait for each other nor take the same run.
# Its WHERE is the ``run_queued`` index's condition, word for word, so that the planner
# walks that index. (A queued run still leased — resumed while a worker held it — is left
# to the reconciler, which re-drives it once the lease is given back or expires.)
# The claim of the runs a ``due`` CTE picked, shared by the queued and the limited claims.
_LEASE_DUE = f"""    UPDATE {RUN} AS run
       SET lease_owner = %s, lease_expires_at = now() + make_interval(secs => %s),
           deliveries = deliveries + 1, status = {lifecycle.CLAIM_QUEUED.target_sql()},
           started_at = COALESCE(started_at, now()), updated_at = now()
      FROM due
     WHERE run.id = due.id
 RETURNING run.*, now() AS database_now,
           EXISTS (SELECT 1 FROM {StepRun._meta.db_table} WHERE run_id = run.id) AS has_steps
"""  # noqa: S608
CLAIM_QUEUED_SQL = f"""
    WITH due AS (
        SELECT id FROM {RUN}
         WHERE {lifecycle.CLAIM_QUEUED.guard_sql()} AND lease_owner = ''
           AND concurrency_limit IS NULL
         ORDER BY created_at
         LIMIT %s
           FOR UPDATE SKIP LOCKED
    )
{_LEASE_DUE}"""  # noqa: S608

# Runs of a flow with ``concurrency.limit`` are claimed apart, holding the flow's advisory
# lock until commit, and only while fewer of the flow's runs than its limit hold a live
# lease: leased runs are the flow's running runs, on any worker. A dead worker's leases
# expire within RUN_LEASE_SECONDS, and so do its slots. (The lock is taken by a statement
# of its own: the count's snapshot must be newer than the last holder's commit.)
FLOW_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
LIMITED_FLOWS_SQL = f"""
    SELECT flow_id, min(concurrency_limit) FROM {RUN}
     WHERE {lifecycle.CLAIM_QUEUED.guard_sql()} AND lease_owner = ''
       AND concurrency_limit IS NOT NULL
     GROUP BY flow_id
     LIMIT 100
"""  # noqa: S608
_LEASED_OF_FLOW = f"""
    SELECT count(*) FROM {RUN} AS other
     WHERE other.flow_id = %s AND {lifecycle.status_sql(lifecycle.RUNNING, column="other.status")}
       AND other.lease_owner <> ''
       AND other.concurrency_limit IS NOT NULL AND other.lease_expires_at > now()
"""  # noqa: S608
CLAIM_LIMITED_SQL = f"""
    WITH due AS (
        SELECT id FROM {RUN}
         WHERE {lifecycle.CLAIM_QUEUED.guard_sql()} AND lease_owner = ''
           AND concurrency_limit IS NOT NULL AND flow_id = %s
         ORDER BY created_at
         LIMIT GREATEST(0, LEAST(%s, %s - ({_LEASED_OF_FLOW})))
           FOR UPDATE SKIP LOCKED
    )
{_LEASE_DUE}"""  # noqa: S608
CLAIM_ONE_LIMITED_SQL = f"""
    UPDATE {RUN} AS run
       SET lease_owner = %s, lease_expires_at = now() + make_interval(secs => %s),
           deliveries = deliveries + 1,
           status = {lifecycle.CLAIM.target_sql()},
           started_at = COALESCE(started_at, now()), updated_at = now()
     WHERE id = %s AND {lifecycle.CLAIM.guard_sql()}
       AND (lease_expires_at IS NULL OR lease_expires_at < now())
       AND ({_LEASED_OF_FLOW} AND other.id <> %s) < concurrency_limit
 RETURNING run.*, now() AS database_now,
           EXISTS (SELECT 1 FROM {StepRun._meta.db_table} WHERE run_id = run.id) AS has_steps
"""  # noqa: S608

# Rows another transaction holds (the holder's own batch, about to commit) are skipped
# rather than waited for: waiting could deadlock with that batch, and it commits within
# moments, long before the lease runs out.
RENEW_SQL = f"""
    UPDATE {RUN} SET lease_expires_at = now() + make_interval(secs => %s)
     WHERE id IN (SELECT id FROM {RUN} WHERE lease_owner = %s FOR UPDATE SKIP LOCKED)
"""  # noqa: S608


def lease_seconds() -> int:
    return int(engine_setting("RUN_LEASE_SECONDS"))


def claim(run_id: Any, owner: str) -> Run | None:
    """The run, leased to ``owner``, with ``database_now`` and ``has_steps`` set; or None
    when it is finished, parked, leased to someone else, or its flow's concurrency limit
    is reached."""
    runs = _leased(CLAIM_SQL, [owner, lease_seconds(), run_id])
    if runs:
        return runs[0]
    limited = (
        Run.objects.filter(pk=run_id, concurrency_limit__isnull=False)
        .values_list("flow_id", flat=True)
        .first()
    )
    if limited is None:
        return None
    with transaction.atomic():
        _lock_flow(limited)
        arguments = [owner, lease_seconds(), run_id, limited, run_id]
        return next(iter(_leased(CLAIM_ONE_LIMITED_SQL, arguments)), None)


def claim_queued(owner: str, limit: int) -> list[Run]:
    """Up to ``limit`` queued runs nobody holds, oldest first, leased to ``owner``; runs of
    a flow with a concurrency limit only while the flow has room."""
    runs = _leased(CLAIM_QUEUED_SQL, [limit, owner, lease_seconds()])
    if len(runs) < limit:
        runs += _claim_limited(owner, limit - len(runs))
    return sorted(runs, key=lambda run: run.created_at)


def _claim_limited(owner: str, limit: int) -> list[Run]:
    with connection.cursor() as cursor:
        cursor.execute(LIMITED_FLOWS_SQL)
        flows = cursor.fetchall()
    runs: list[Run] = []
    for flow_id, flow_limit in flows:
        if len(runs) >= limit:
            break
        with transaction.atomic():
            _lock_flow(flow_id)
            arguments = [flow_id, limit - len(runs), flow_limit, flow_id, owner, lease_seconds()]
            runs += _leased(CLAIM_LIMITED_SQL, arguments)
    return runs


def _leased(statement: str, arguments: list[Any]) -> list[Run]:
    """The runs a claim statement (``RETURNING run.*, ...``) leased, as ``Run.objects.raw``
    builds them (each field's value converted as the ORM reads it; the other columns set
    as attributes) at a fraction of its CPU: its set-up is per query, this one per
    process."""
    cursor = native_sql.execute(native_sql.native(statement), arguments)
    reader = _reader_of(tuple(column.name for column in cursor.description))
    db = connections[DEFAULT_DB_ALIAS]
    return [reader.run(row, db) for row in cursor.fetchall()]


@dataclass(frozen=True)
class _RunReader:
    """Where each of ``Run``'s fields is in a claim's row, and what converts it."""

    names: tuple[str, ...]  # each concrete field's attname, in the model's order
    positions: tuple[int, ...]  # of each concrete field, in the model's order
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    annotations: tuple[tuple[str, int], ...]

    def run(self, row: tuple[Any, ...], db: Any) -> Run:
        values = [row[position] for position in self.positions]
        for index, functions, column in self.converters:
            for function in functions:
                values[index] = function(values[index], column, db)
        run = Run.from_db(db.alias, self.names, values)
        for name, position in self.annotations:
            setattr(run, name, row[position])
        return run


@lru_cache(maxsize=8)
def _reader_of(columns: tuple[str, ...]) -> _RunReader:
    fields = Run._meta.concrete_fields
    positions = tuple(columns.index(field.column) for field in fields)
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(Run._meta.db_table)
        functions = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if functions:
            converters.append((index, tuple(functions), column))
    annotations = tuple(
        (name, position) for position, name in enumerate(columns) if position not in positions
    )
    names = tuple(field.attname for field in fields)
    return _RunReader(names, positions, tuple(converters), annotations)


def _lock_flow(flow_id: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(FLOW_LOCK_SQL, [f"flowgate.flow-concurrency:{flow_id}"])


def queued_unleased_exist() -> bool:
    return Run.objects.filter(status=RunStatus.QUEUED, lease_owner="").exists()


def renew_leases(owner: str) -> int:
    """Extend every lease ``owner`` holds by a full lease from now (database clock)."""
    with connection.cursor() as cursor:
        cursor.execute(RENEW_SQL, [lease_seconds(), owner])
        return int(cursor.rowcount)


def release(run: Run, owner: str, *, progressed: bool) -> None:
    """Give the lease back. A delivery that ends here did not crash its worker, so it does
    not count towards dead-lettering (only deliveries that never come back do): with
    progress the count starts again, without (nothing was due yet) the claim's increment
    is taken back."""
    deliveries = 0 if progressed else Greatest(F("deliveries") - 1, 0)
    Run.objects.filter(pk=run.pk, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None, deliveries=deliveries
    )


def release_all(runs: list[Run], owner: str) -> None:
    Run.objects.filter(pk__in=[run.pk for run in runs], lease_owner=owner).update(
        lease_owner="", lease_expires_at=None
    )


# Runs due again (their message was lost, their worker died, a retry or wake-up is due):
# queued for the drains, oldest first. A run being worked on holds a live lease, and one
# just queued is younger than the grace period (its drain request is in flight).
REQUEUE_DUE_SQL = f"""
    WITH due AS (
        SELECT id FROM {RUN}
         WHERE {lifecycle.REQUEUE.guard_sql()}
           AND (lease_expires_at IS NULL OR lease_expires_at < now())
           AND (wake_at IS NULL OR wake_at <= now())
           AND updated_at < now() - make_interval(secs => %s)
         ORDER BY updated_at
         LIMIT %s
           FOR UPDATE SKIP LOCKED
    )
    UPDATE {RUN} AS run
       SET status = {lifecycle.REQUEUE.target_sql()}, lease_owner = '', lease_expires_at = NULL,
           updated_at = now()
      FROM due
     WHERE run.id = due.id
 RETURNING run.id
"""  # noqa: S608


def requeue_due(*, grace_seconds: float, limit: int) -> list[Any]:
    """Queue the runs that are due again for the drains; their ids."""
    with connection.cursor() as cursor:
        cursor.execute(REQUEUE_DUE_SQL, [grace_seconds, limit])
        return [row[0] for row in cursor.fetchall()]
