"""Redis Streams on the tests' real Redis: connector.stream.publish (exactly once per step)
and trigger.stream through the consumer (ack after the run exists, crash-safe, duplicates
make one run, bad messages dead-lettered), end to end with a real worker and consumer."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings

from apps.connectors.services import connection_create, connection_test
from apps.connectors.streams.consumer import StreamConsumer, stream_status
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow
from tests.support.processes import (
    REPOSITORY_ROOT,
    child_environment,
    stop_process_group,
    tail,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def stream_name(redis_client):
    name = f"test-events-{uuid.uuid4().hex[:8]}"
    yield name
    redis_client.delete(name, f"{name}:dead", f"{name}-out")


@pytest.fixture
def events(workspace, admin_user):
    url = urlsplit(settings.REDIS_URL)
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name="events",
        type="redis",
        config={
            "host": url.hostname,
            "port": url.port or 6379,
            "db": int(url.path.strip("/") or 0),
        },
        secrets={},
    )


def stream_flow(stream: str) -> dict:
    return definition(
        [
            node("event", "trigger.stream", connection="events", stream=stream),
            node(
                "decide",
                "transform.set",
                values={"claim": "trigger.body.claim", "approved": "trigger.body.amount < 100"},
            ),
            node(
                "publish",
                "connector.stream.publish",
                connection="events",
                stream=f"{stream}-out",
                payload={
                    "claim": "steps.decide.output.claim",
                    "approved": "steps.decide.output.approved",
                },
            ),
        ],
        [("event", "decide"), ("decide", "publish")],
    )


def test_the_test_button_reaches_redis(events):
    outcome = connection_test(connection=events)
    assert outcome.ok and "connected to Redis" in outcome.message


def test_a_wrong_password_says_authentication_failed(workspace, admin_user):
    url = urlsplit(settings.REDIS_URL)
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="wrong",
        type="redis",
        config={"host": url.hostname, "port": url.port or 6379, "username": "nobody-xyz"},
        secrets={"password": "nope"},
    )
    outcome = connection_test(connection=wrong)
    assert outcome.stage == "auth" and "authentication failed" in outcome.message


def test_publish_adds_one_message_even_when_the_step_is_retried(
    workspace, admin_user, events, redis_client, stream_name
):
    flow = published_flow(
        workspace,
        admin_user,
        definition(
            [
                node("start", "trigger.manual"),
                node(
                    "publish",
                    "connector.stream.publish",
                    connection="events",
                    stream=stream_name,
                    payload={"n": "trigger.body.n"},
                ),
            ],
            [("start", "publish")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 7}), enqueue=False).run
    advance(run.id)
    step = StepRun.objects.get(run=run, node_id="publish")
    [(message_id, fields)] = redis_client.xrange(stream_name)
    assert step.output == {"stream": stream_name, "id": message_id, "duplicate": False}
    assert json.loads(fields["data"]) == {"n": 7}
    assert fields["idempotency_key"] and fields["correlation_id"] == run.correlation_id

    # The same step executed again (a retry after a crash) publishes nothing new.
    from apps.connectors.streams import client
    from apps.connectors.streams.connection import RedisConfig

    url = urlsplit(settings.REDIS_URL)
    config = RedisConfig(host=url.hostname, port=url.port or 6379, db=int(url.path.strip("/")))
    with client.connect(config, {}) as connection:
        again = client.publish_once(
            connection,
            stream=stream_name,
            fields=fields,
            idempotency_key=fields["idempotency_key"],
            max_length=1000,
        )
    assert again == (message_id, False)
    assert redis_client.xlen(stream_name) == 1


def _flow_and_consumer(workspace, admin_user, stream_name, **consumer):
    flow = published_flow(workspace, admin_user, stream_flow(stream_name))
    worker = StreamConsumer(name="consumer-a", **consumer)
    assert worker.poll_once() == []  # creates the group at the end of the stream
    return flow, worker


def test_a_message_starts_one_run_and_is_acked_after(
    workspace, admin_user, events, redis_client, stream_name
):
    flow, worker = _flow_and_consumer(workspace, admin_user, stream_name)
    message_id = redis_client.xadd(
        stream_name, {"data": json.dumps({"claim": "C-1", "amount": 40})}
    )
    [outcome] = worker.poll_once()
    assert outcome.action == "started" and outcome.message_id == message_id
    run = Run.objects.get(pk=outcome.run_id)
    assert run.flow_id == flow.id and run.trigger == "stream"
    assert run.input["body"] == {"claim": "C-1", "amount": 40}
    group = f"flowgate.{flow.id}"
    assert redis_client.xpending(stream_name, group)["pending"] == 0
    assert stream_status()[0]["lag"] == 0


def test_a_crash_before_the_ack_loses_nothing_and_makes_one_run(
    workspace, admin_user, events, redis_client, stream_name, settings
):
    flow, _ = _flow_and_consumer(workspace, admin_user, stream_name)
    group = f"flowgate.{flow.id}"
    message_id = redis_client.xadd(
        stream_name, {"data": json.dumps({"claim": "C-2", "amount": 10})}
    )
    # A consumer receives the message and dies before creating the run or acking.
    redis_client.xreadgroup(group, "crashed", {stream_name: ">"}, count=1)
    assert redis_client.xpending(stream_name, group)["pending"] == 1

    settings.FLOWGATE = {**settings.FLOWGATE, "STREAM_CLAIM_IDLE_SECONDS": 1}
    survivor = StreamConsumer(name="consumer-b")
    deadline = time.monotonic() + 10
    outcomes = []
    while not outcomes and time.monotonic() < deadline:
        outcomes = survivor.poll_once()  # claims it once it has been idle long enough
        time.sleep(0.1)
    [outcome] = outcomes
    assert outcome.message_id == message_id and outcome.action == "started"

    assert Run.objects.filter(flow=flow).count() == 1
    assert redis_client.xpending(stream_name, group)["pending"] == 0


def test_a_crash_between_the_run_and_the_ack_makes_no_second_run(
    workspace, admin_user, events, redis_client, stream_name, monkeypatch
):
    flow, worker = _flow_and_consumer(workspace, admin_user, stream_name)
    group = f"flowgate.{flow.id}"
    redis_client.xadd(stream_name, {"data": json.dumps({"claim": "C-3", "amount": 10})})
    real_xack, calls = redis.Redis.xack, []

    def xack_lost_once(self, *args):
        calls.append(args)
        if len(calls) == 1:
            raise redis.ConnectionError("connection lost before the ack")
        return real_xack(self, *args)

    monkeypatch.setattr(redis.Redis, "xack", xack_lost_once)
    assert worker.poll_once() == []  # the run was committed, the ack was lost
    assert Run.objects.filter(flow=flow).count() == 1
    assert redis_client.xpending(stream_name, group)["pending"] == 1
    [again] = worker.poll_once()  # delivered again from the pending list
    assert again.action == "duplicate"
    assert Run.objects.filter(flow=flow).count() == 1
    assert redis_client.xpending(stream_name, group)["pending"] == 0


def test_a_message_that_is_not_json_is_dead_lettered_and_the_consumer_goes_on(
    workspace, admin_user, events, redis_client, stream_name
):
    flow, worker = _flow_and_consumer(workspace, admin_user, stream_name)
    bad = redis_client.xadd(stream_name, {"data": "{not json"})
    missing = redis_client.xadd(stream_name, {"other": "x"})
    good = redis_client.xadd(stream_name, {"data": json.dumps({"claim": "C-4", "amount": 1})})
    outcomes = {item.message_id: item.action for item in worker.poll_once()}
    assert outcomes == {bad: "dead", missing: "dead", good: "started"}
    dead = {
        fields["message_id"]: fields for _, fields in redis_client.xrange(f"{stream_name}:dead")
    }
    assert "is not JSON" in dead[bad]["reason"] and json.loads(dead[bad]["fields"]) == {
        "data": "{not json"
    }
    assert "no 'data' field" in dead[missing]["reason"]
    assert redis_client.xpending(stream_name, f"flowgate.{flow.id}")["pending"] == 0
    assert Run.objects.filter(flow=flow).count() == 1


@pytest.mark.slow
def test_a_stream_message_runs_the_flow_end_to_end(
    workspace, admin_user, events, redis_client, stream_name, start_worker, test_database_url
):
    # A real worker of this test's own (stopped at its end, unlike the session-wide
    # celery_worker), so later tests that drive the engine by hand do not race it.
    start_worker()
    flow = published_flow(workspace, admin_user, stream_flow(stream_name))
    log = Path(tempfile.mkstemp(prefix="flowgate-streams-", suffix=".log")[1])
    with log.open("ab") as output:
        consumer = subprocess.Popen(
            [sys.executable, "manage.py", "streams", "consume", "--consumer", "e2e"],
            cwd=REPOSITORY_ROOT,
            env=child_environment(
                DATABASE_URL=test_database_url,
                STREAM_BLOCK_MILLISECONDS="200",
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        group = f"flowgate.{flow.id}"
        deadline = time.monotonic() + 30
        while not _group_exists(redis_client, stream_name, group):
            assert consumer.poll() is None and time.monotonic() < deadline, tail(log)
            time.sleep(0.1)
        redis_client.xadd(stream_name, {"data": json.dumps({"claim": "C-9", "amount": 25})})
        run = None
        while run is None or run.status not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, f"no finished run in time:\n{tail(log)}"
            time.sleep(0.2)
            run = Run.objects.filter(flow=flow).first()
        assert run.status == "succeeded", run.error
        [(_, fields)] = redis_client.xrange(f"{stream_name}-out")
        assert json.loads(fields["data"]) == {"claim": "C-9", "approved": True}
        assert redis_client.xpending(stream_name, group)["pending"] == 0
    finally:
        stop_process_group(consumer)
    assert consumer.returncode is not None


def _group_exists(client, stream, group) -> bool:
    try:
        return any(info["name"] == group for info in client.xinfo_groups(stream))
    except redis.ResponseError:
        return False


def test_the_connection_page_shows_each_stream_triggers_lag(
    workspace, admin_user, admin_client, events, redis_client, stream_name
):
    flow, worker = _flow_and_consumer(workspace, admin_user, stream_name)
    redis_client.xadd(stream_name, {"data": "not json"})
    worker.poll_once()
    for n in range(3):
        redis_client.xadd(stream_name, {"data": json.dumps({"n": n})})
    [row] = stream_status(workspace_id=workspace.id, connection="events")
    assert (row["lag"], row["pending"], row["dead"]) == (3, 0, 1)
    page = admin_client.get(f"/w/acme/settings/connections/{events.pk}/")
    assert page.status_code == 200
    assert f"flowgate.{flow.id}".encode() in page.content and b"<td>3</td>" in page.content


def test_a_message_no_run_can_start_from_is_dead_lettered_after_max_deliveries(
    workspace, admin_user, events, redis_client, stream_name, settings, monkeypatch
):
    settings.FLOWGATE = {**settings.FLOWGATE, "MAX_DELIVERIES": 2}
    flow, worker = _flow_and_consumer(workspace, admin_user, stream_name)
    poison = redis_client.xadd(stream_name, {"data": json.dumps({"boom": True})})
    good = redis_client.xadd(stream_name, {"data": json.dumps({"claim": "C-5", "amount": 1})})
    from apps.connectors.streams import consumer

    real_run_start = consumer.run_start

    def run_start_refusing_boom(**kwargs):
        if kwargs["payload"]["body"].get("boom"):
            raise ValueError("boom is not a claim")
        return real_run_start(**kwargs)

    monkeypatch.setattr(consumer, "run_start", run_start_refusing_boom)
    worker = StreamConsumer(name="consumer-a")  # reads MAX_DELIVERIES from settings
    first = {item.message_id: item.action for item in worker.poll_once()}
    assert first == {poison: "failed", good: "started"}
    second = {item.message_id: item.action for item in worker.poll_once()}
    assert second == {poison: "dead"}
    [(_, dead)] = redis_client.xrange(f"{stream_name}:dead")
    assert dead["message_id"] == poison and "boom is not a claim" in dead["reason"]
    assert redis_client.xpending(stream_name, f"flowgate.{flow.id}")["pending"] == 0
    assert Run.objects.filter(flow=flow).count() == 1


def test_only_published_active_stream_flows_are_consumed(
    workspace, admin_user, events, stream_name
):
    from apps.connectors.streams.consumer import subscriptions
    from apps.flows.services import flow_archive, flow_create

    live = published_flow(workspace, admin_user, stream_flow(stream_name), name="Live")
    archived = published_flow(workspace, admin_user, stream_flow(stream_name), name="Old")
    flow_archive(flow=archived, actor=admin_user)
    flow_create(
        workspace=workspace, actor=admin_user, name="Draft", definition=stream_flow(stream_name)
    )
    published_flow(
        workspace,
        admin_user,
        definition([node("start", "trigger.manual")]),
        name="Manual",
    )
    assert [item.flow_id for item in subscriptions()] == [str(live.id)]
