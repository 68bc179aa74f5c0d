"""The dashboard in a real browser: Chart.js draws the charts from the JSON API, and a run
that a real worker finishes shows up in the figures and charts without a reload."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.e2e.conftest import log_in
from tests.runs.helpers import definition, node, published_flow

GOOD = definition(
    [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "1"})],
    [("start", "calc")],
    name="Good flow",
)

# True once the canvas has any painted pixel: Chart.js drew on it.
CANVAS_PAINTED = """canvas => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return canvas.width > 0 && pixels.some((value, index) => index % 4 === 3 && value > 0);
}"""


def test_dashboard_draws_charts_and_follows_a_run_live(page: Page, workspace, builder_user):
    flow = published_flow(workspace, builder_user, GOOD, name="Good flow")
    first = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run
    advance(first.id)
    log_in(page, "bea")
    page.goto("/w/acme/dashboard/?range=1h")

    charts = page.locator("[data-dashboard-charts]")
    expect(charts).to_have_attribute("data-drawn", "true")
    expect(charts).to_have_attribute("data-runs-total", "1")
    for name in ("runs", "steps"):
        canvas = page.locator(f'canvas[data-chart="{name}"]')
        assert canvas.evaluate(CANVAS_PAINTED), f"the {name} chart is blank"
    runs_card = page.locator(".stat", has=page.locator('[data-stat="total"]'))
    expect(runs_card).to_contain_text("1 succeeded")
    expect(page.locator('[data-slo="run_success_percent"]')).to_contain_text("met")
    page.evaluate("window.notReloaded = true")

    run_start(flow=flow, trigger="manual", payload=envelope({}))  # the studio's worker runs it

    expect(runs_card).to_contain_text("2 succeeded", timeout=20_000)
    expect(page.locator('[data-stat="total"]')).to_have_text("2")
    expect(charts).to_have_attribute("data-runs-total", "2", timeout=15_000)
    assert page.evaluate("window.notReloaded === true")  # live, not a reload


def test_the_charts_stop_polling_while_the_tab_is_hidden(page: Page, workspace, builder_user):
    log_in(page, "bea")
    polls: list[str] = []
    answered: list[str] = []
    page.on(
        "request",
        lambda request: "/api/w/acme/dashboard/" in request.url and polls.append(request.url),
    )
    page.on(
        "requestfinished",
        lambda request: "/api/w/acme/dashboard/" in request.url and answered.append(request.url),
    )
    page.goto("/w/acme/dashboard/")
    expect(page.locator("[data-dashboard-charts]")).to_have_attribute("data-drawn", "true")
    page.wait_for_timeout(5_500)
    assert len(polls) >= 2  # the first draw, then at least one poll

    page.evaluate(
        """() => {
          Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    hidden_since = len(polls)
    page.wait_for_timeout(11_000)  # two poll intervals
    assert len(polls) == hidden_since, "polled while the tab was hidden"

    page.evaluate(
        """() => {
          Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    page.wait_for_timeout(1_000)
    # Back at once when the tab is shown again (a regular poll may also fall in that second).
    assert hidden_since + 1 <= len(polls) <= hidden_since + 2
    # The last poll's answer before the test ends: its request runs a materialiser pass in
    # the server, whose transaction deadlocked the teardown's TRUNCATE when the page closed
    # with the poll still in flight.
    deadline = time.monotonic() + 15
    while len(answered) < len(polls) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
