"""Migration audit/0004 keeps chains written before it: they still verify, and their
events take their chains' order in the append order."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.audit.sealing import GENESIS, audit_seal, event_digest
from apps.audit.services import audit_record, audit_verify

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("audit", "0003_data_settings")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def write_old_chain(workspace_id, count: int) -> None:
    """What audit_record wrote before 0004: each event chained as it was inserted."""
    previous, start = GENESIS, datetime(2026, 11, 1, tzinfo=UTC)
    with connection.cursor() as cursor:
        for sequence in range(1, count + 1):
            event = SimpleNamespace(
                workspace_id=workspace_id,
                sequence=sequence,
                created_at=start + timedelta(minutes=sequence),
                actor_id=None,
                actor_label="system",
                action="flow.published",
                object_type="flow",
                object_id=f"f-{sequence}",
                summary=f"published v{sequence}",
                data={"version": sequence},
                previous_digest=previous,
            )
            digest = event_digest(event)  # type: ignore[arg-type]
            cursor.execute(
                "INSERT INTO audit_auditevent (id, workspace_id, created_at, sequence, actor_id,"
                " actor_label, action, object_type, object_id, summary, data, previous_digest,"
                " digest) VALUES (%s, %s, %s, %s, NULL, 'system', %s, 'flow', %s, %s, %s, %s, %s)",
                [
                    uuid.uuid4(),
                    workspace_id,
                    event.created_at,
                    sequence,
                    event.action,
                    event.object_id,
                    event.summary,
                    json.dumps({"version": sequence}),
                    previous,
                    digest,
                ],
            )
            previous = digest
        cursor.execute(
            "INSERT INTO audit_auditchainhead (workspace_id, sequence, digest) VALUES (%s, %s, %s)",
            [workspace_id, count, previous],
        )


def test_chains_written_before_the_migration_still_verify_and_grow(workspace):
    migrate(BEFORE)
    try:
        write_old_chain(workspace.id, 4)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    report = audit_verify(workspace_id=workspace.id)
    assert (report.ok, report.checked, report.unsealed) == (True, 4, 0)
    audit_record(workspace_id=workspace.id, action="flow.published", summary="after")
    assert audit_seal() == 1
    report = audit_verify(workspace_id=workspace.id)
    assert (report.ok, report.checked) == (True, 5)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sequence FROM audit_auditevent WHERE workspace_id = %s ORDER BY appended",
            [workspace.id],
        )
        assert [row[0] for row in cursor.fetchall()] == [1, 2, 3, 4, 5]
