"""The main list pages and APIs read a page of runs, flows, review tasks or audit events in
a fixed number of queries: listing seven rows costs what listing two does, so an N+1 (a
query per row) fails here."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.services import audit_record, audit_seal
from apps.runs.blocks import envelope
from apps.runs.services import run_start
from tests.inbox.helpers import start_waiting_run
from tests.runs.helpers import chain, published_flow

pytestmark = pytest.mark.django_db(transaction=True)
counter = itertools.count()


def add_runs(workspace, actor, count: int) -> None:
    for _ in range(count):
        flow = published_flow(workspace, actor, chain(1), name=f"Flow {next(counter)}")
        run_start(
            flow=flow, trigger="manual", payload=envelope({"n": 1}), actor=actor, enqueue=False
        )


def add_flows(workspace, actor, count: int) -> None:
    for _ in range(count):
        published_flow(workspace, actor, chain(1), name=f"Flow {next(counter)}")


def add_tasks(workspace, actor, count: int) -> None:
    for _ in range(count):
        start_waiting_run(workspace, actor)


def add_events(workspace, actor, count: int) -> None:
    """Events already sealed into the chain: a page seals what is waiting first, at a cost
    per batch that is not the list's (tests/audit/test_sealing.py)."""
    for index in range(count):
        audit_record(
            workspace_id=workspace.id,
            action="flow.created",
            actor=actor,
            object_type="flow",
            object_id=f"flow-{index}",
            summary=f"created flow {next(counter)}",
        )
    audit_seal()


CASES = {
    "runs page": ("/w/acme/runs/", add_runs),
    "runs API": ("/api/w/acme/runs/", add_runs),
    "flows page": ("/w/acme/flows/", add_flows),
    "flows API": ("/api/w/acme/flows/", add_flows),
    "inbox page": ("/w/acme/inbox/?view=all", add_tasks),
    "inbox API": ("/api/w/acme/tasks/?view=all", add_tasks),
    "audit page": ("/w/acme/audit/", add_events),
    "audit API": ("/api/w/acme/audit/", add_events),
}


def queries_of(client, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured), response.content


@pytest.mark.parametrize("case", CASES)
def test_a_list_costs_the_same_queries_for_two_rows_as_for_seven(
    case, workspace, admin_user, admin_client, django_assert_num_queries
):
    url, add = CASES[case]
    add(workspace, admin_user, 2)
    admin_client.get(url)  # warm: per-process caches (policies, settings) are filled once
    few, before = queries_of(admin_client, url)
    add(workspace, admin_user, 5)
    with django_assert_num_queries(few):
        response = admin_client.get(url)
    assert response.status_code == 200
    assert len(response.content) > len(before) + 500, "the five new rows are not listed"
