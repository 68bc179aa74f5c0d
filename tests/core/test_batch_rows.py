"""apps.core.batch_rows.insert_rows: each connection keeps a cursor per statement (so that
psycopg keeps its adaptation state between batches); what is written must not depend on it."""

from __future__ import annotations

import pytest
from django.db import DataError, IntegrityError, connection, transaction

from apps.audit.models import AuditEvent
from apps.core.batch_rows import insert_rows

pytestmark = pytest.mark.django_db(transaction=True)


def event(workspace, **data) -> AuditEvent:
    return AuditEvent(workspace=workspace, action="test.row", data=data)


def test_rows_round_trip_through_a_reused_statement_and_across_a_new_connection(workspace):
    first = [event(workspace, a=1, z="é ☃", big=2**63 + 1), event(workspace)]
    insert_rows(AuditEvent, first)
    # The same statement again (two rows), with values of other types in its columns.
    second = [event(workspace, z=None, a=[1, {"b": 2.5}]), event(workspace, n=-(2**70))]
    insert_rows(AuditEvent, second)
    connection.close()
    third = [event(workspace, k="v"), event(workspace)]
    insert_rows(AuditEvent, third)  # a new connection: none of the old one's cursors

    rows = first + second + third
    for row in rows:
        stored = AuditEvent.objects.get(pk=row.pk)
        assert stored.data == row.data and stored.appended == row.appended
    assert len({row.appended for row in rows}) == len(rows)  # each read back its own


def test_a_refused_insert_leaves_the_statement_usable(workspace):
    kept = event(workspace)
    insert_rows(AuditEvent, [kept])
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(AuditEvent, [AuditEvent(id=kept.id, workspace=workspace, action="test.row")])
    with pytest.raises(DataError), transaction.atomic():
        insert_rows(AuditEvent, [event(workspace, x=float("nan"))])  # JSON has no NaN
    after = event(workspace, ok=True)
    insert_rows(AuditEvent, [after])
    assert AuditEvent.objects.get(pk=after.pk).data == {"ok": True}
