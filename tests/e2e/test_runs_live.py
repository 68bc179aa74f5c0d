"""Run pages in a real browser: live status over the workspace WebSocket, the polling
fallback when the socket is down, and bulk retry from the dead-letter list."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, WebSocketRoute, expect

from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_cancel, run_start
from apps.runs.tasks import advance_run
from tests.e2e.conftest import log_in
from tests.runs.helpers import definition, node, published_flow

WAITS = definition(
    [
        node("start", "trigger.manual"),
        node("prepare", "transform.set", values={"ready": "true"}),
        node("hold", "util.delay", duration="1h"),
    ],
    [("start", "prepare"), ("prepare", "hold")],
    name="Holding flow",
)
BROKEN = definition(
    [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "nope.deep"})],
    [("start", "calc")],
    name="Broken flow",
)


def queued_run(workspace, user):
    flow = published_flow(workspace, user, WAITS, name="Holding flow")
    return run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run


def test_run_detail_follows_the_worker_over_the_websocket(page: Page, workspace, builder_user):
    run = queued_run(workspace, builder_user)
    log_in(page, "bea")
    page.goto(f"/w/acme/runs/{run.id}/")
    expect(page.locator("[data-run-status]")).to_have_text("Queued")
    expect(page.locator("body")).to_have_attribute("data-live", "on")

    advance_run.delay(str(run.id))  # the real worker runs it and publishes events

    expect(page.locator("[data-run-status]")).to_have_text("Waiting")
    expect(page.locator(".step-waiting")).to_contain_text("hold")
    expect(page.locator(".step-succeeded", has_text="prepare")).to_be_visible()

    prepare = page.locator("details[data-step=prepare]")
    prepare.locator("summary").click()  # the user opens a step; a refresh must keep it open
    expect(prepare).to_have_attribute("open", "")
    run_cancel(run=run, actor=builder_user)
    expect(page.locator("[data-run-status]")).to_have_text("Cancelled")
    expect(page.locator("details[data-step=prepare]")).to_have_attribute("open", "")


def test_run_detail_polls_when_the_websocket_is_down(page: Page, workspace, builder_user):
    def refuse(socket: WebSocketRoute) -> None:
        socket.close(code=4403, reason="refused for this test")

    page.route_web_socket(re.compile(r".*/ws/w/.*"), refuse)
    run = queued_run(workspace, builder_user)
    log_in(page, "bea")
    page.goto(f"/w/acme/runs/{run.id}/")
    expect(page.locator("body")).to_have_attribute("data-live", "off")

    advance_run.delay(str(run.id))

    expect(page.locator("[data-run-status]")).to_have_text("Waiting", timeout=20_000)


def test_select_all_and_retry_failed_runs_in_bulk(page: Page, workspace, builder_user):
    flow = published_flow(workspace, builder_user, BROKEN, name="Broken flow")
    runs = []
    for _ in range(3):
        run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
        advance(run.id)
        runs.append(run)
    log_in(page, "bea")
    page.goto("/w/acme/runs/dead-letter/")
    retry = page.get_by_role("button", name="Retry from failed step")
    expect(retry).to_be_disabled()

    page.get_by_label("Select all runs on this page").check()
    expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
    retry.click()

    expect(page.locator(".messages")).to_contain_text("Retried 3 runs.")
    second_attempts = StepRun.objects.filter(
        run__in=runs, node_id="calc", attempt=2, finished_at__isnull=False
    )
    deadline = time.monotonic() + 30
    while second_attempts.count() < 3:  # each failed step re-executed by the real worker
        assert time.monotonic() < deadline, "the worker did not retry every run in time"
        time.sleep(0.1)
