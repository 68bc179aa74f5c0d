"""A claim's runs are built from its own row, as the ORM reads a run: every field the same
as ``Run.objects.get`` gives (JSON decoded, timestamps aware), plus what the claim adds."""

from __future__ import annotations

import pytest
from django.db.models import JSONField

from apps.runs.engine import claims
from apps.runs.models import Run, RunStatus
from apps.runs.services import run_start
from tests.runs.helpers import chain, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def assert_read_as_the_orm_reads_it(claimed: Run) -> None:
    stored = Run.objects.get(pk=claimed.pk)
    for field in Run._meta.concrete_fields:
        assert getattr(claimed, field.attname) == getattr(stored, field.attname), field.name
        if isinstance(field, JSONField):
            assert type(getattr(claimed, field.attname)) is type(getattr(stored, field.attname))
    assert not claimed._state.adding and claimed._state.db == "default"


def test_a_claimed_run_reads_as_the_orm_reads_it(workspace, builder_user):
    flow = published_flow(workspace, builder_user, chain(1))
    payload = {"body": {"n": 1, "text": "é ☃", "items": [1, {"b": 2.5}]}}
    run = run_start(flow=flow, trigger="manual", payload=payload, enqueue=False).run

    claimed = claims.claim(run.id, "worker-a")

    assert claimed is not None and claimed.lease_owner == "worker-a"
    assert claimed.status == RunStatus.RUNNING and claimed.deliveries == 1
    assert claimed.has_steps is False and claimed.database_now.tzinfo is not None
    assert_read_as_the_orm_reads_it(claimed)
    assert claims.claim(run.id, "worker-b") is None  # leased


def test_queued_runs_are_claimed_oldest_first_and_read_as_the_orm_reads_them(
    workspace, builder_user
):
    flow = published_flow(workspace, builder_user, chain(1))
    started = [
        run_start(flow=flow, trigger="manual", payload={"body": {"n": n}}, enqueue=False).run
        for n in range(3)
    ]

    claimed = claims.claim_queued("worker-a", 10)

    assert [run.pk for run in claimed] == [run.pk for run in started]
    for run in claimed:
        assert run.lease_owner == "worker-a" and run.has_steps is False
        assert_read_as_the_orm_reads_it(run)
    assert claims.claim_queued("worker-b", 10) == []
