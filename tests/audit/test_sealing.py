"""The audit trail without a lock on the hot path: appends do not wait for each other,
one sealer at a time chains them, and verification still names every kind of tampering."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F

from apps.audit import tasks
from apps.audit.models import AuditChainHead, AuditEvent
from apps.audit.sealing import SEAL_LOCK, audit_seal, event_digest
from apps.audit.services import audit_record, audit_verify
from tests.audit.helpers import policy_routed_run

pytestmark = pytest.mark.django_db(transaction=True)


def append(workspace, number: int) -> AuditEvent:
    return audit_record(
        workspace_id=workspace.id,
        action="flow.published",
        object_type="flow",
        object_id=f"f-{number}",
        summary=f"published v{number}",
        data={"number": number},
    )


@contextmanager
def held_by_another_connection(work: Callable[[], None]) -> Iterator[None]:
    """Run ``work`` in a transaction on a second connection and keep that transaction open
    (uncommitted) until the block ends; then roll it back."""
    started, finish, failures = threading.Event(), threading.Event(), []

    def hold() -> None:
        try:
            with transaction.atomic():
                work()
                started.set()
                finish.wait(10)
                transaction.set_rollback(True)
        except Exception as error:  # reported by the test, not swallowed
            failures.append(error)
            started.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert started.wait(10)
    try:
        yield
    finally:
        finish.set()
        thread.join(10)
    assert not failures


def test_an_append_does_not_wait_for_another_transactions_uncommitted_append(workspace):
    append(workspace, 0)
    audit_seal()
    with held_by_another_connection(lambda: append(workspace, 1)), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '300ms'")
        mine = append(workspace, 2)  # a lock wait would fail here, after 300 ms
    assert AuditEvent.objects.filter(pk=mine.pk).exists()
    assert audit_seal() == 1  # the other transaction rolled back: only ours is chained
    assert audit_verify(workspace_id=workspace.id).checked == 2


def test_events_are_chained_in_append_order_and_verify(workspace):
    events = [append(workspace, number) for number in range(5)]
    assert all(event.sequence is None for event in events)
    assert [event.appended for event in events] == sorted(event.appended for event in events)
    report = audit_verify(workspace_id=workspace.id, seal=False)
    assert (report.ok, report.checked, report.unsealed) == (True, 0, 5)
    assert audit_seal() == 5
    chained = AuditEvent.objects.filter(workspace=workspace).order_by("sequence")
    assert [event.data["number"] for event in chained] == [0, 1, 2, 3, 4]
    assert [event.sequence for event in chained] == [1, 2, 3, 4, 5]
    assert audit_seal() == 0  # sealing again seals nothing twice
    report = audit_verify(workspace_id=workspace.id)
    assert (report.ok, report.checked, report.unsealed) == (True, 5, 0)


@pytest.fixture
def sealed_trail(workspace) -> None:
    for number in range(6):
        append(workspace, number)
    audit_seal()


def swap_positions(workspace) -> None:
    first = AuditEvent.objects.get(workspace=workspace, sequence=2)
    second = AuditEvent.objects.get(workspace=workspace, sequence=3)
    AuditEvent.objects.filter(pk=first.pk).update(sequence=-1)
    AuditEvent.objects.filter(pk=second.pk).update(sequence=2)
    AuditEvent.objects.filter(pk=first.pk).update(sequence=3)


def insert_forged(workspace) -> None:
    """Make room after #3 and insert a well-formed event there, its digests recomputed."""
    AuditEvent.objects.filter(workspace=workspace, sequence__gte=4).update(
        sequence=F("sequence") + 10
    )
    third = AuditEvent.objects.get(workspace=workspace, sequence=3)
    forged = append(workspace, 42)
    forged.sequence, forged.previous_digest = 4, third.digest
    forged.digest = event_digest(forged)
    forged.save(update_fields=["sequence", "previous_digest", "digest"])


TAMPERING = {
    "edited": (
        lambda ws: AuditEvent.objects.filter(workspace=ws, sequence=3).update(summary="x"),
        3,
        "the event was altered",
    ),
    "deleted": (
        lambda ws: AuditEvent.objects.filter(workspace=ws, sequence=3).delete(),
        3,
        "an event is missing",
    ),
    "reordered": (swap_positions, 2, "the link to the previous event is broken"),
    "inserted": (insert_forged, 5, "an event is missing"),
    "truncated": (
        lambda ws: AuditEvent.objects.filter(workspace=ws, sequence__gte=5).delete(),
        5,
        "an event is missing",  # the next event sealed is #7
    ),
    "unsealed again": (
        lambda ws: AuditEvent.objects.filter(workspace=ws, sequence=4).update(sequence=None),
        4,
        "an event is missing",
    ),
}


@pytest.mark.parametrize("kind", TAMPERING)
def test_every_kind_of_tampering_with_sealed_events_is_named(workspace, sealed_trail, kind):
    tamper, position, problem = TAMPERING[kind]
    tamper(workspace)
    append(workspace, 99)  # a fresh append is sealed on demand, after the damage
    report = audit_verify(workspace_id=workspace.id)
    assert (report.ok, report.first_bad_sequence, report.problem) == (False, position, problem)


def test_a_truncated_trail_is_named_even_with_nothing_appended_since(workspace, sealed_trail):
    AuditEvent.objects.filter(workspace=workspace, sequence__gte=5).delete()
    report = audit_verify(workspace_id=workspace.id)
    assert (report.ok, report.first_bad_sequence) == (False, 5)
    assert report.problem == "events at the end of the trail are missing"


def test_the_command_says_how_many_events_are_not_sealed_yet(workspace, sealed_trail, capsys):
    append(workspace, 7)
    append(workspace, 8)
    call_command("audit", "verify", "--no-seal")
    assert "acme: ok, 6 events, 2 not sealed yet" in capsys.readouterr().out
    call_command("audit", "verify")
    assert "acme: ok, 8 events\n" in capsys.readouterr().out


def test_two_sealers_at_once_chain_each_event_once(workspace, other_workspace):
    for number in range(150):
        append(workspace, number)
        append(other_workspace, number)
    counts, barrier = [], threading.Barrier(2)

    def sealer() -> None:
        try:
            barrier.wait(10)
            counts.append(audit_seal())
        finally:
            connection.close()

    threads = [threading.Thread(target=sealer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(counts) in ([0, 300], [300, 0]) or sum(counts) == 300
    for space in (workspace, other_workspace):
        report = audit_verify(workspace_id=space.id, seal=False)
        assert (report.ok, report.checked, report.unsealed) == (True, 150, 0)
        assert AuditChainHead.objects.get(workspace=space).sequence == 150


def test_the_beat_sealer_does_not_wait_for_a_sealer_at_work(workspace):
    append(workspace, 1)

    def lock() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK])

    with held_by_another_connection(lock):
        tasks.seal()  # would block here (and the test time out) if it waited
        assert AuditEvent.objects.get(workspace=workspace).sequence is None
    tasks.seal()
    assert AuditEvent.objects.get(workspace=workspace).sequence == 1


def test_the_sealer_runs_every_second():
    entry = settings.CELERY_BEAT_SCHEDULE["seal-audit-trail"]
    assert entry["task"] == "audit.seal" and entry["schedule"] <= 1.0


def test_a_decision_is_recorded_unsealed_then_sealed_by_the_task(workspace, admin_user):
    run = policy_routed_run(
        workspace, admin_user, policy_input={"amount": "input.amount"}, body={"amount": 5}
    )
    decision = AuditEvent.objects.get(object_id=str(run.id), action="decision.policy")
    tasks.seal()
    decision.refresh_from_db()
    assert decision.sequence is not None and len(decision.digest) == 64
    assert audit_verify(workspace_id=workspace.id, seal=False).ok
