"""apps.core.batch_rows.insert_rows: each connection keeps a cursor per statement (so that
psycopg keeps its adaptation state between batches); what is written must not depend on it."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import DataError, IntegrityError, connection, transaction

from apps.audit.models import AuditEvent
from apps.core import native_sql
from apps.core.batch_rows import insert_rows, new_row
from apps.runs.services import run_new
from tests.runs.helpers import chain, published_flow

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


def test_rows_written_in_a_pipelined_block_read_back_what_the_database_filled(workspace):
    """``native_sql.pipelined``: the statements go together, and each row still gets its own
    columns the database fills, at the block's end; the same statement twice in a block
    reads each its own."""
    first, second = [event(workspace, n=1), event(workspace, n=2)], [event(workspace, n=3)]
    third = [event(workspace, n=4), event(workspace, n=5)]  # the first's statement again
    with transaction.atomic(), native_sql.pipelined():
        insert_rows(AuditEvent, first)
        insert_rows(AuditEvent, second)
        insert_rows(AuditEvent, third)
    rows = first + second + third
    assert all(row.pk is not None and not row._state.adding for row in rows)
    assert [AuditEvent.objects.get(pk=row.pk).data["n"] for row in rows] == [1, 2, 3, 4, 5]


def test_a_refused_row_in_a_pipelined_block_rolls_back_the_whole_transaction(workspace):
    kept = event(workspace)
    insert_rows(AuditEvent, [kept])
    with pytest.raises(IntegrityError), transaction.atomic(), native_sql.pipelined():
        insert_rows(AuditEvent, [event(workspace, lost=True)])
        insert_rows(AuditEvent, [AuditEvent(id=kept.id, workspace=workspace, action="test.row")])
    assert not AuditEvent.objects.filter(data__lost=True).exists()
    after = event(workspace, ok=True)
    insert_rows(AuditEvent, [after])  # the connection and the statement are usable
    assert AuditEvent.objects.get(pk=after.pk).data == {"ok": True}


def fields_of(row) -> dict:
    """What an instance holds: each field's value, and the related rows it caches."""
    values = {key: value for key, value in row.__dict__.items() if key != "_state"}
    return {**values, "_db": row._state.db, "_cached": dict(row._state.fields_cache)}


@pytest.mark.parametrize(
    "model, values",
    [
        ("runs.StepRun", {"node_id": "n", "block_type": "flow.set", "attempt": 2}),
        ("runs.Run", {"trigger": "webhook", "input": {"a": 1}, "parent_run": None}),
        ("audit.AuditEvent", {"action": "test.row", "actor": None, "data": {"k": [1]}}),
        ("policies.PolicyEvaluation", {"rule": "allow", "allow": True, "reasons": ["r"]}),
    ],
)
def test_new_row_builds_what_the_model_s_constructor_builds(model, values, workspace, admin_user):
    model_class = apps.get_model(model)
    flow = published_flow(workspace, admin_user, chain(1))
    if model == "runs.StepRun":
        values["run"] = run_new(flow=flow, version=None, trigger="manual", payload={})
    else:
        values["workspace_id"] = workspace.pk
    if model == "runs.Run":
        values["flow"] = flow
    built, expected = new_row(model_class, **values), model_class(**values)
    for field in model_class._meta.concrete_fields:  # a fresh uuid4 or time each
        if callable(field.default) and field.default not in (dict, list):
            setattr(built, field.attname, getattr(expected, field.attname))
    assert fields_of(built) == fields_of(expected)
    assert built._state.adding
    # Mutable defaults are each row's own, as the constructor makes them.
    again = new_row(model_class, **values)
    for name, value in built.__dict__.items():
        if isinstance(value, dict | list) and name not in values:
            assert value is not getattr(again, name)
    with pytest.raises(TypeError, match="unexpected field 'colour'"):
        new_row(model_class, colour="red")
