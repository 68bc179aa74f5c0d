"""Versioned blocks: util.delay v2 (a duration) beside v1 (seconds). A published flow keeps
running the version each node was built with; the editor's upgrade applies v2's migration."""

from __future__ import annotations

import pytest

from apps.blocks.builtin.flow import DelayBlock, DelayBlockV1, duration_text
from apps.blocks.registry import RegistryError, registry
from apps.flows.definition import validate_definition
from apps.flows.services import flow_draft_save, flow_import, flow_publish
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow


def delay_flow(**delay: object) -> dict:
    return definition(
        [node("start", "trigger.manual"), {"id": "wait", "type": "util.delay", **delay}],
        [("start", "wait")],
    )


def test_the_registry_keeps_every_version_and_hands_out_the_latest_by_default():
    assert registry.get("util.delay") is DelayBlock
    assert registry.get("util.delay", 1) is DelayBlockV1
    assert registry.get("util.delay", 3) is None
    assert registry.versions("util.delay") == [1, 2]
    assert DelayBlockV1 not in registry.all()  # the palette offers the latest only


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5400, "1h30m"), (3600, "1h"), (90, "1m30s"), (0.5, "0.5s"), (172800, "2d")],
)
def test_the_v2_migration_writes_seconds_as_a_duration(seconds, text):
    assert duration_text(seconds) == text
    assert registry.upgrade_config("util.delay", 1, {"seconds": seconds}) == (
        2,
        {"duration": text},
    )


def test_upgrading_an_unknown_version_is_refused():
    with pytest.raises(RegistryError, match="no version 7"):
        registry.upgrade_config("util.delay", 7, {})


def test_a_node_naming_a_version_that_does_not_exist_is_a_problem_of_that_node():
    problems = validate_definition(delay_flow(version=9, config={"duration": "1h"}))
    assert ("wait", "version", "util.delay has no version 9 (versions: 1, 2)") in [
        (p.node, p.field, p.message) for p in problems
    ]


def test_a_node_without_a_version_is_version_1_when_loaded():
    # An old file: seconds is right for v1 and wrong for v2.
    assert validate_definition(delay_flow(config={"seconds": 60})) == []
    assert validate_definition(delay_flow(version=2, config={"seconds": 60})) != []


def test_saving_fills_in_the_latest_version_and_importing_an_old_file_version_1(
    workspace, builder_user
):
    flow = flow_import(
        workspace=workspace, actor=builder_user, document=delay_flow(config={"seconds": 60})
    )
    assert [n.get("version") for n in flow.draft_definition["nodes"]] == [1, 1]
    saved = flow_draft_save(
        flow=flow,
        actor=builder_user,
        definition=delay_flow(config={"duration": "1m"}),
        revision=flow.draft_revision,
    )
    assert saved.problems == []
    assert [n["version"] for n in saved.flow.draft_definition["nodes"]] == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_a_published_flow_on_v1_keeps_running_v1_until_republished_upgraded(
    workspace, builder_user
):
    flow = published_flow(workspace, builder_user, delay_flow(version=1, config={"seconds": 90}))
    first = _run(flow)
    assert (first.block_version, first.wait_deadline - first.started_at) == (1, _seconds(90))

    version, config = registry.upgrade_config("util.delay", 1, {"seconds": 90})
    upgraded = delay_flow(version=version, config=config)
    flow.refresh_from_db()
    flow_draft_save(
        flow=flow, actor=builder_user, definition=upgraded, revision=flow.draft_revision
    )
    flow_publish(flow=flow, actor=builder_user)
    second = _run(flow, key="second")
    assert (second.block_version, second.wait_deadline - second.started_at) == (2, _seconds(90))
    assert flow.versions.get(number=1).definition["nodes"][1]["config"] == {"seconds": 90}


def _run(flow, key="first") -> StepRun:
    run = run_start(
        flow=flow, trigger="manual", payload=envelope({}), enqueue=False, idempotency_key=key
    ).run
    advance(run.id)
    return StepRun.objects.get(run=run, node_id="wait")


def _seconds(value: float):
    from datetime import timedelta

    return pytest.approx(timedelta(seconds=value), abs=timedelta(seconds=5))


def test_the_catalogue_lists_every_version_with_the_latest_named(builder_client):
    delays = [b for b in builder_client.get("/api/blocks/").json() if b["key"] == "util.delay"]
    assert [(b["version"], b["latest_version"], b["versions"]) for b in delays] == [
        (1, 2, [1, 2]),
        (2, 2, [1, 2]),
    ]
    assert "seconds" in delays[0]["config_schema"]["properties"]
    assert "duration" in delays[1]["config_schema"]["properties"]


def test_the_upgrade_api_applies_the_migration_and_checks_the_result(builder_client):
    answer = builder_client.post(
        "/api/blocks/upgrade/",
        {"type": "util.delay", "version": 1, "config": {"seconds": 7200}},
        content_type="application/json",
    )
    assert answer.json() == {
        "type": "util.delay",
        "version": 2,
        "config": {"duration": "2h"},
        "problems": [],
    }
    refused = builder_client.post(
        "/api/blocks/upgrade/",
        {"type": "util.delay", "version": 5, "config": {}},
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert "no version 5" in str(refused.json())


def test_the_data_migration_stamps_version_1_on_drafts_saved_before_versions(
    workspace, builder_user
):
    from django.apps import apps as django_apps

    from apps.flows.models import Flow

    migration = __import__(
        "apps.flows.migrations.0002_stamp_block_versions_on_drafts", fromlist=["stamp_drafts"]
    )
    flow = flow_import(
        workspace=workspace, actor=builder_user, document=delay_flow(config={"seconds": 60})
    )
    old_draft = delay_flow(config={"seconds": 60})  # as stored before versions: none named
    Flow.objects.filter(pk=flow.pk).update(draft_definition=old_draft)
    migration.stamp_drafts(django_apps, None)
    flow.refresh_from_db()
    assert [n["version"] for n in flow.draft_definition["nodes"]] == [1, 1]
    assert validate_definition(flow.draft_definition) == []
