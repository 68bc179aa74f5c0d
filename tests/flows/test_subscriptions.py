"""Publishing writes the flow's subscription row from its trigger block's activation;
archiving removes it, restoring writes it again; the listeners read the rows."""

from __future__ import annotations

import json

import pytest
from django.apps import apps as django_apps

from apps.flows.models import TriggerSubscription
from apps.flows.services import flow_archive, flow_draft_save, flow_publish, flow_restore
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db


def trigger_only(block: str, **config: object) -> dict:
    return definition(
        [node("start", block, **config), node("s", "transform.set", values={"a": "1"})],
        [("start", "s")],
    )


def row(flow) -> tuple | None:
    found = TriggerSubscription.objects.filter(flow=flow).first()
    return found and (found.kind, found.key, found.settings, found.version.number)


def test_publishing_writes_and_replaces_the_flows_subscription(workspace, builder_user):
    flow = published_flow(workspace, builder_user, trigger_only("trigger.webhook", mode="sync"))
    assert row(flow) == (
        "webhook",
        flow.webhook_token,
        {"mode": "sync", "auth": "token", "timeout_seconds": 10.0},
        1,
    )
    flow.refresh_from_db()
    schedule = trigger_only("trigger.schedule", cron="*/15 * * * *", body={"x": 1})
    flow_draft_save(
        flow=flow, actor=builder_user, definition=schedule, revision=flow.draft_revision
    )
    flow_publish(flow=flow, actor=builder_user)
    assert row(flow) == (
        "schedule",
        "*/15 * * * *",
        {"cron": "*/15 * * * *", "timezone": "UTC", "body": {"x": 1}},
        2,
    )


def test_archiving_unsubscribes_and_restoring_subscribes_again(workspace, builder_user):
    flow = published_flow(workspace, builder_user, trigger_only("trigger.webhook"))
    flow_archive(flow=flow, actor=builder_user)
    assert row(flow) is None
    flow_restore(flow=flow, actor=builder_user)
    assert row(flow)[0] == "webhook"


def test_a_manual_trigger_subscribes_to_nothing(workspace, builder_user):
    assert row(published_flow(workspace, builder_user, trigger_only("trigger.manual"))) is None


def test_a_webhook_to_a_flow_without_a_webhook_trigger_is_409(client, workspace, builder_user):
    flow = published_flow(workspace, builder_user, trigger_only("trigger.manual"))
    response = client.post(
        f"/hooks/{flow.webhook_token}", data="{}", content_type="application/json"
    )
    assert response.status_code == 409
    assert "is not started by a webhook" in response.json()["error"]["message"]


def test_the_stream_consumer_reads_its_subscriptions_in_one_query(
    workspace, builder_user, django_assert_num_queries
):
    from apps.connectors.services import connection_create
    from apps.connectors.streams.consumer import subscriptions

    connection_create(
        workspace=workspace,
        actor=builder_user,
        name="events",
        type="redis",
        config={"host": "127.0.0.1", "port": 6379},
        secrets={},
    )
    for index in range(3):
        published_flow(
            workspace,
            builder_user,
            trigger_only("trigger.stream", connection="events", stream=f"orders.{index}"),
            name=f"Stream {index}",
        )
    published_flow(workspace, builder_user, trigger_only("trigger.webhook"), name="Hook")
    with django_assert_num_queries(1):
        found = subscriptions()
    assert sorted(item.stream for item in found) == ["orders.0", "orders.1", "orders.2"]


def test_the_data_migration_subscribes_flows_published_before_subscriptions(
    workspace, builder_user
):
    migration = __import__(
        "apps.flows.migrations.0003_trigger_subscriptions", fromlist=["subscribe_published_flows"]
    )
    hook = published_flow(workspace, builder_user, trigger_only("trigger.webhook"), name="Hook")
    old = published_flow(workspace, builder_user, trigger_only("trigger.webhook"), name="Old")
    flow_archive(flow=old, actor=builder_user)
    TriggerSubscription.objects.all().delete()
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=60, period="seconds")
    PeriodicTask.objects.create(
        name=f"flow:{hook.id}",
        task="runs.start_scheduled",
        interval=every,
        args=json.dumps([str(hook.id)]),
    )
    migration.subscribe_published_flows(django_apps, None)
    assert list(TriggerSubscription.objects.values_list("flow_id", "kind")) == [
        (hook.id, "webhook")
    ]
    assert not PeriodicTask.objects.filter(name__startswith="flow:").exists()


@pytest.mark.django_db(transaction=True)
def test_the_webhook_listener_reads_a_subscription_once_until_one_changes(workspace, builder_user):
    """Each process keeps the subscriptions it read; publishing, archiving (here) or a
    change announced by another process (the generation in Redis) drops them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core.redis_clients import redis_client
    from apps.flows.subscriptions import SUBSCRIPTIONS, subscription_for

    flow = published_flow(workspace, builder_user, trigger_only("trigger.webhook", mode="sync"))

    def lookup() -> tuple[int | None, int]:
        with CaptureQueriesContext(connection) as queries:
            found = subscription_for("webhook", flow.webhook_token)
        return (found.version.number if found else None), len(queries.captured_queries)

    assert lookup() == (1, 1)
    assert lookup() == (1, 0)
    flow.refresh_from_db()
    flow_draft_save(
        flow=flow,
        actor=builder_user,
        definition=trigger_only("trigger.webhook", mode="async"),
        revision=flow.draft_revision,
    )
    flow_publish(flow=flow, actor=builder_user)
    assert lookup() == (2, 1)
    flow_archive(flow=flow, actor=builder_user)
    assert lookup() == (None, 1)
    assert lookup() == (None, 0)
    # Another process restores it: its rows land, and it moves the generation.
    TriggerSubscription.objects.bulk_create(  # no signal in this process
        [
            TriggerSubscription(
                flow=flow,
                workspace_id=flow.workspace_id,
                version=flow.latest_version,
                block="trigger.webhook",
                kind="webhook",
                key=flow.webhook_token,
                settings={"mode": "async"},
            )
        ]
    )
    assert lookup() == (None, 0)
    redis_client().incr(SUBSCRIPTIONS.key)
    assert lookup() == (2, 1)
