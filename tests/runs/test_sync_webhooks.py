"""Sync webhooks wait for the flow's response whatever its blocks, on real workers."""

from __future__ import annotations

import json

import pytest

from apps.runs.models import Run
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


def hook(**config):
    return node("hook", "trigger.webhook", mode="sync", **config)


def post(client, flow, body):
    return client.post(
        f"/hooks/{flow.webhook_token}", data=json.dumps(body), content_type="application/json"
    )


def test_a_sync_webhook_through_a_for_each_answers_with_the_response(
    client, workspace, builder_user, celery_worker
):
    totals = definition(
        [
            hook(),
            node("lines", "logic.foreach", items="trigger.body.lines", map={"net": "item * 2"}),
            node("answer", "flow.respond", body={"count": "steps.lines.output.count"}),
        ],
        [("hook", "lines"), ("lines", "answer", "out")],
    )
    flow = published_flow(workspace, builder_user, totals)
    response = post(client, flow, {"lines": [1, 2, 3]})
    assert response.status_code == 200, response.content
    assert response.json() == {"count": 3}
    assert Run.objects.get(pk=response["X-Flowgate-Run"]).status == "succeeded"


def test_a_sync_webhook_parked_on_a_person_answers_202_with_the_runs_url(
    client, workspace, builder_user, celery_worker
):
    review = definition(
        [
            hook(timeout_seconds=30),
            node("review", "human.approval", title="Check {{ trigger.body.claim }}"),
            node("answer", "flow.respond", body={"ok": "true"}),
        ],
        [("hook", "review"), ("review", "answer", "approved")],
    )
    flow = published_flow(workspace, builder_user, review)
    response = post(client, flow, {"claim": "C-1"})
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response.json()["run"])
    assert run.status == "waiting"
    assert response.json()["url"] == f"/w/{workspace.slug}/runs/{run.id}/"
    assert response["Location"].endswith(f"/runs/{run.id}/")


def test_a_sync_webhook_answers_202_once_its_timeout_passes(
    client, workspace, builder_user, celery_worker
):
    slow = definition(
        [
            hook(timeout_seconds=1),
            node("pause", "util.delay", duration="1m"),
            node("answer", "flow.respond", body={"ok": "true"}),
        ],
        [("hook", "pause"), ("pause", "answer")],
    )
    flow = published_flow(workspace, builder_user, slow)
    response = post(client, flow, {})
    assert response.status_code == 202
    assert Run.objects.get(pk=response.json()["run"]).status == "waiting"
