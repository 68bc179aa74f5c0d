"""NATS JetStream on the real server (127.0.0.1:4222, or FLOWGATE_TEST_NATS_HOST/PORT):
the ``nats`` connection type, connector.stream.publish (de-duplicated by Nats-Msg-Id) and
trigger.stream through the consumer (durable pull consumer, ack after the run is
committed, idempotency key = stream sequence, non-JSON dead-lettered to <subject>.dead).
Every test has its own JetStream stream and subjects, deleted afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid

import nats
import pytest
from django.urls import reverse

from apps.connectors.services import connection_create, connection_test
from apps.connectors.streams.client import StreamError
from apps.connectors.streams.connection import NatsConfig
from apps.connectors.streams.consumer import StreamConsumer, stream_status
from apps.connectors.streams.nats import NatsSession, durable_name
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.engine.context import idempotency_key_for
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow

HOST = os.environ.get("FLOWGATE_TEST_NATS_HOST", "127.0.0.1")
PORT = int(os.environ.get("FLOWGATE_TEST_NATS_PORT", "4222"))


def _listening() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=2):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def nats_server():
    if not _listening():
        pytest.fail(f"no NATS server listens on {HOST}:{PORT}: scripts/test.sh starts one")


def jetstream(operation):
    """Run ``operation(js)`` on a connection of the test's own."""

    async def run():
        connection = await nats.connect(f"nats://{HOST}:{PORT}")
        try:
            return await operation(connection.jetstream())
        finally:
            await connection.close()

    return asyncio.run(run())


@pytest.fixture
def subject():
    """A JetStream stream of its own taking ``<subject>`` and ``<subject>.dead``."""
    token = uuid.uuid4().hex[:10]
    name, subject = f"TEST_{token}", f"test.events.{token}"
    jetstream(lambda js: js.add_stream(name=name, subjects=[subject, f"{subject}.dead"]))
    yield subject
    jetstream(lambda js: js.delete_stream(name))


def stored(subject: str) -> list:
    """Every message the stream keeps on ``subject``: (sequence, data, headers)."""

    async def read(js):
        name = await js.find_stream_name_by_subject(subject)
        info = await js.stream_info(name)
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                message = await js.get_msg(name, sequence)
            except nats.js.errors.NotFoundError:
                continue
            if message.subject == subject:
                found.append((message.seq, message.data, dict(message.headers or {})))
        return found

    return jetstream(read)


def publish(subject: str, data: bytes) -> int:
    async def send(js):
        return (await js.publish(subject, data)).seq

    return jetstream(send)


@pytest.fixture
def events(workspace, admin_user):
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name="events",
        type="nats",
        config={"host": HOST, "port": PORT},
        secrets={},
    )


def trigger_flow(workspace, actor, subject: str):
    return published_flow(
        workspace,
        actor,
        definition(
            [
                node("event", "trigger.stream", connection="events", stream=subject),
                node("decide", "transform.set", values={"claim": "trigger.body.claim"}),
            ],
            [("event", "decide")],
        ),
    )


def test_the_test_button_reaches_nats_with_jetstream(events):
    outcome = connection_test(connection=events)
    assert outcome.ok, outcome.message
    assert "connected to NATS" in outcome.message and "JetStream" in outcome.message


@pytest.mark.parametrize(
    ("change", "stage"), [({"port": 1}, "refused"), ({"host": "no-such-host.invalid"}, "dns")]
)
def test_the_test_button_names_the_failed_stage(workspace, admin_user, change, stage):
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name=f"wrong-{stage}",
        type="nats",
        config={"host": HOST, "port": PORT, "timeout_seconds": 3, **change},
        secrets={},
    )
    outcome = connection_test(connection=wrong)
    assert (outcome.ok, outcome.stage) == (False, stage), outcome.message


def test_publish_is_deduplicated_by_the_idempotency_key(workspace, admin_user, events, subject):
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
                    stream=subject,
                    payload={"n": "trigger.body.n"},
                ),
            ],
            [("start", "publish")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope({"n": 7}), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    step = StepRun.objects.get(run=run, node_id="publish")
    [(sequence, data, headers)] = stored(subject)
    assert step.output == {"stream": subject, "id": str(sequence), "duplicate": False}
    assert json.loads(data) == {"n": 7}
    key = idempotency_key_for(run.id, "publish")
    assert headers["Nats-Msg-Id"] == key
    assert headers["Flowgate-Correlation-Id"] == run.correlation_id

    # The same step published again (a retry after a crash): the stream drops it.
    with NatsSession(NatsConfig(host=HOST, port=PORT), {}) as session:
        again = session.publish(subject, data, msg_id=key)
    assert again[1:] == (sequence, True)
    assert len(stored(subject)) == 1


def test_a_message_starts_one_run_keyed_by_its_sequence_and_is_acked(
    workspace, admin_user, events, subject
):
    flow = trigger_flow(workspace, admin_user, subject)
    worker = StreamConsumer(name="consumer-a")
    try:
        assert worker.poll_once() == []  # creates the durable consumer at the end
        sequence = publish(subject, json.dumps({"claim": "C-1"}).encode())
        [outcome] = worker.poll_once()
    finally:
        worker.stop()
        worker.run()  # closes its connections and returns at once
    assert (outcome.action, outcome.message_id) == ("started", str(sequence))
    run = Run.objects.get(pk=outcome.run_id)
    assert run.flow_id == flow.id and run.trigger == "stream"
    assert run.input["body"] == {"claim": "C-1"}
    assert run.idempotency_key.endswith(f":{sequence}")
    [row] = stream_status()
    assert row["group"] == durable_name(str(flow.id))
    assert (row["lag"], row["pending"], row["dead"]) == (0, 0, 0)


def test_a_lost_ack_redelivers_and_makes_no_second_run(
    workspace, admin_user, events, subject, settings, monkeypatch
):
    settings.FLOWGATE = {**settings.FLOWGATE, "STREAM_CLAIM_IDLE_SECONDS": 1}
    flow = trigger_flow(workspace, admin_user, subject)
    worker = StreamConsumer(name="consumer-a")
    real_ack, calls = NatsSession.ack, []

    def ack_lost_once(self, message):
        calls.append(message.sequence)
        if len(calls) == 1:
            raise StreamError("error", "connection lost before the ack", retryable=True)
        return real_ack(self, message)

    monkeypatch.setattr(NatsSession, "ack", ack_lost_once)
    try:
        assert worker.poll_once() == []
        publish(subject, json.dumps({"claim": "C-2"}).encode())
        assert worker.poll_once() == []  # the run was committed, the ack was lost
        assert Run.objects.filter(flow=flow).count() == 1
        deadline, outcomes = time.monotonic() + 15, []
        while not outcomes and time.monotonic() < deadline:
            outcomes = worker.poll_once()  # redelivered once the ack wait has passed
    finally:
        worker.stop()
        worker.run()
    [again] = outcomes
    assert again.action == "duplicate"
    assert Run.objects.filter(flow=flow).count() == 1


def test_a_message_that_is_not_json_is_dead_lettered_and_the_consumer_goes_on(
    workspace, admin_user, admin_client, events, subject
):
    flow = trigger_flow(workspace, admin_user, subject)
    worker = StreamConsumer(name="consumer-a")
    try:
        assert worker.poll_once() == []
        bad = publish(subject, b"{not json")
        good = publish(subject, json.dumps({"claim": "C-3"}).encode())
        outcomes = {item.message_id: item.action for item in worker.poll_once()}
    finally:
        worker.stop()
        worker.run()
    assert outcomes == {str(bad): "dead", str(good): "started"}
    [(_, data, headers)] = stored(f"{subject}.dead")
    assert data == b"{not json"
    assert headers["Flowgate-Reason"].startswith("not JSON")
    assert headers["Flowgate-Sequence"] == str(bad) and headers["Flowgate-Subject"] == subject
    assert Run.objects.filter(flow=flow).count() == 1
    [row] = stream_status()
    assert (row["lag"], row["pending"], row["dead"]) == (0, 0, 1)

    # The connection page shows the flow's consumer with its lag and dead letters.
    page = admin_client.get(
        reverse("connections:detail", kwargs={"workspace_slug": "acme", "connection_id": events.pk})
    ).content.decode()
    assert durable_name(str(flow.id)) in page and f"{subject}.dead" in page
