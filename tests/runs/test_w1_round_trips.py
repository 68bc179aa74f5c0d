"""What one W1 run costs Postgres through the sync webhook (issue 23's decision flow:
webhook → transform → model (a transform here) → policy → branch → respond): every
statement and every commit is counted, so a new round trip on this path fails a test."""

from __future__ import annotations

import json

import pytest

from apps.audit.models import AuditEvent
from apps.policies.models import PolicyEvaluation
from apps.runs.models import Run, RunStatus
from tests.runs.w1 import w1_flow

pytestmark = pytest.mark.django_db(transaction=True)

WRITES = ("INSERT", "UPDATE", "DELETE")


def commits(queries: list[dict]) -> int:
    """COMMITs, plus each write outside a transaction (autocommit: its own commit)."""
    count, in_transaction = 0, False
    for query in queries:
        sql = query["sql"].strip().upper()
        if sql == "BEGIN":
            in_transaction = True
        elif sql == "COMMIT":
            in_transaction, count = False, count + 1
        elif sql == "ROLLBACK":
            in_transaction = False
        elif not in_transaction and sql.startswith(WRITES):
            count += 1
    return count


def post(client, flow, amount: int):
    return client.post(
        f"/hooks/{flow.webhook_token}",
        data=json.dumps({"amount": amount, "customer": "c-1"}),
        content_type="application/json",
    )


def test_a_w1_run_through_the_sync_webhook_costs_six_statements_and_one_commit(
    client, workspace, builder_user, django_assert_num_queries
):
    flow = w1_flow(workspace, builder_user)
    assert post(client, flow, 50).json() == {"decision": "approve"}  # warms this process

    # One transaction: the run, written already ended (no claim, no UPDATE for its end),
    # the decision log row, the decision's audit event and the step rows, in one INSERT
    # each (BEGIN + 4 + COMMIT). The webhook's subscription (flow and version), the
    # published policy and the flow version's facts come from this process's caches.
    with django_assert_num_queries(6) as captured:
        response = post(client, flow, 5000)
    assert response.status_code == 200 and response.json() == {"decision": "reject"}
    assert commits(captured.captured_queries) == 1

    run_id = response["X-Flowgate-Run"]
    run = Run.objects.get(pk=run_id)  # its one INSERT wrote it ended, as an UPDATE would
    assert run.status == RunStatus.SUCCEEDED and run.finished_at is not None
    assert run.response["body"] == {"decision": "reject"} and run.output == run.response
    assert (run.lease_owner, run.lease_expires_at, run.deliveries) == ("", None, 0)
    assert run.rollup_xid is not None  # the dashboards count it
    assert run.steps.filter(status="succeeded").count() == 6
    assert PolicyEvaluation.objects.filter(source__contains=run_id, allow=False).count() == 1
    decision = AuditEvent.objects.get(object_id=run_id, action="decision.policy")
    assert decision.data["node"] == "decide" and decision.data["port"] == "deny"


def test_a_newly_published_policy_decides_the_next_run(client, workspace, builder_user):
    from apps.policies import services as policies

    flow = w1_flow(workspace, builder_user)
    assert post(client, flow, 50).json() == {"decision": "approve"}
    policy = policies.Policy.objects.get(workspace=workspace, slug="w1-limits")
    policies.policy_publish(
        policy=policy,
        actor=builder_user,
        source="package flowgate.w1\n\ndefault allow := false\n",
        run_tests=False,
    )
    assert post(client, flow, 50).json() == {"decision": "reject"}


def test_the_engine_goes_by_the_cache_generations_the_webhook_read(
    client, workspace, builder_user, monkeypatch
):
    """The sync webhook reads the process's cache generations with its rate limit, in one
    Redis round trip (a pipeline); the engine's rounds in that request go by them, reading
    none of their own (a drain's rounds read them once each, with an MGET)."""
    from apps.core.redis_clients import redis_client

    flow = w1_flow(workspace, builder_user)
    assert post(client, flow, 50).json() == {"decision": "approve"}  # warms this process
    redis, reads = redis_client(), []
    mget = redis.mget

    def counted(*args, **kwargs):
        reads.append(args)
        return mget(*args, **kwargs)

    monkeypatch.setattr(redis, "mget", counted)
    assert post(client, flow, 5000).json() == {"decision": "reject"}
    assert reads == []
