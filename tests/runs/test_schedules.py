"""The scheduler reads the schedule subscription rows each minute and starts one run per
flow and due minute, in the schedule's time zone, catching up a late tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.flows.models import TriggerSubscription
from apps.runs.models import Run
from apps.runs.schedules import schedules_tick
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def scheduled(workspace, actor, cron: str, timezone: str = "UTC", name: str = "Nightly"):
    flow = published_flow(
        workspace,
        actor,
        definition(
            [
                node("start", "trigger.schedule", cron=cron, timezone=timezone, body={"k": 1}),
                node("s", "transform.set", values={"a": "trigger.body.k"}),
            ],
            [("start", "s")],
            name=name,
        ),
        name=name,
    )
    TriggerSubscription.objects.filter(flow=flow).update(activated_at=LONG_AGO)
    return flow


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_due_flow_gets_one_run_for_its_minute(workspace, builder_user):
    flow = scheduled(workspace, builder_user, "*/15 * * * *")
    [run] = schedules_tick(now=at("2026-12-07T10:15:04"))
    assert (run.flow_id, run.trigger, run.version.number) == (flow.id, "schedule", 1)
    assert run.input == {"body": {"k": 1}, "scheduled_for": "2026-12-07T10:15"}
    assert schedules_tick(now=at("2026-12-07T10:15:40")) == []  # beat fired twice
    assert schedules_tick(now=at("2026-12-07T10:16:01")) == []  # 10:15 is looked back at
    assert Run.objects.filter(flow=flow).count() == 1


def test_a_late_tick_catches_up_the_minute_it_missed(workspace, builder_user):
    scheduled(workspace, builder_user, "30 9 * * *")
    [run] = schedules_tick(now=at("2026-12-07T09:32:10"))
    assert run.input["scheduled_for"] == "2026-12-07T09:30"


def test_the_cron_is_read_in_the_schedules_time_zone(workspace, builder_user):
    scheduled(workspace, builder_user, "0 9 * * 1", timezone="Europe/Paris")
    # Monday 7 December 2026, 09:00 in Paris is 08:00 UTC.
    assert schedules_tick(now=at("2026-12-07T09:00:00")) == []
    assert len(schedules_tick(now=at("2026-12-07T08:00:00"))) == 1
    assert schedules_tick(now=at("2026-12-08T08:00:00")) == []  # a Tuesday


def test_no_run_for_minutes_before_the_flow_was_published_or_after_it_was_archived(
    workspace, builder_user
):
    from apps.flows.services import flow_archive

    flow = scheduled(workspace, builder_user, "* * * * *")
    TriggerSubscription.objects.filter(flow=flow).update(activated_at=at("2026-12-07T10:00:30"))
    assert [
        run.input["scheduled_for"] for run in schedules_tick(now=at("2026-12-07T10:01:00"))
    ] == [
        "2026-12-07T10:00",
        "2026-12-07T10:01",
    ]
    flow_archive(flow=flow, actor=builder_user)
    assert schedules_tick(now=at("2026-12-07T10:02:00") + timedelta(seconds=1)) == []


def test_a_day_of_month_cron_is_accepted(workspace, builder_user):
    # Five fields map to minute hour day-of-month month day-of-week (31 is no weekday).
    scheduled(workspace, builder_user, "0 0 31 * *")
    assert len(schedules_tick(now=at("2026-12-31T00:00:00"))) == 1
