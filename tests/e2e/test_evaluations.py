"""The Evaluate page and the MCP tool settings in a real browser: a builder adds example
cases, compares the draft with the published version and reads the verdicts; an admin
exposes the flow as an MCP tool."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from apps.evaluations.models import EvalCase
from apps.flows.services import flow_draft_save
from apps.mcp_tools.models import FlowTool
from tests.e2e.conftest import ARTIFACTS, log_in
from tests.e2e.test_accessibility import axe_findings, overflow
from tests.evaluations.test_services import SMARTER, routing_flow
from tests.runs.helpers import published_flow


def add_case(page: Page, name: str, input: str, expected: str) -> None:
    page.get_by_label("Name").fill(name)
    page.get_by_label("Input (JSON object)").fill(input)
    page.get_by_label("Expected result contains (JSON object)").fill(expected)
    page.get_by_role("button", name="Add case").click()


def test_a_builder_compares_the_draft_with_the_published_version(
    page: Page, workspace, builder_user
):
    flow = published_flow(workspace, builder_user, routing_flow("'cards'"), name="Routing")
    flow.refresh_from_db()
    flow_draft_save(
        flow=flow,
        actor=builder_user,
        definition=routing_flow(SMARTER),
        revision=flow.draft_revision,
    )
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.get_by_role("link", name="Evaluate").click()
    expect(page.get_by_role("heading", name="Evaluate", exact=True)).to_be_visible()

    add_case(page, "lost card", '{"text": "I lost my card"}', '{"team": "cards"}')
    expect(page.get_by_text("Case 'lost card' added.")).to_be_visible()
    add_case(page, "broken", "{not json", "{}")
    expect(page.get_by_role("alert").filter(has_text="not JSON")).to_be_visible()
    add_case(page, "loan", '{"text": "a loan please"}', '{"team": "loans"}')
    expect(page.get_by_test_id("cases").get_by_role("row")).to_have_count(3)  # header + 2

    expect(page.get_by_label("Baseline")).to_have_value("v1")
    expect(page.get_by_label("Candidate")).to_have_value("draft")
    page.get_by_role("button", name="Run evaluation").click()

    report = page.get_by_test_id("evaluation-report")
    expect(report).to_have_attribute("data-finished", "true", timeout=60_000)
    expect(page.locator("[data-side=baseline] [data-stat=pass-rate]")).to_have_text("50%")
    expect(page.locator("[data-side=candidate] [data-stat=pass-rate]")).to_have_text("100%")
    expect(page.get_by_test_id("verdicts")).to_contain_text('team is "cards", expected "loans"')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evaluate-report.png"), full_page=True)
    assert axe_findings(page) == []
    page.get_by_role("link", name="Cases and new evaluation").click()
    page.screenshot(path=str(ARTIFACTS / "evaluate-page.png"), full_page=True)
    assert axe_findings(page) == []
    page.set_viewport_size({"width": 1024, "height": 768})
    assert overflow(page) == 0
    assert EvalCase.objects.filter(flow=flow).count() == 2


def test_an_admin_exposes_a_flow_as_an_mcp_tool(page: Page, workspace, admin_user):
    flow = published_flow(workspace, admin_user, routing_flow("'cards'"), name="Routing")
    log_in(page, "ada")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.get_by_role("link", name="MCP tool").click()
    page.get_by_label("Expose as an MCP tool").check()
    page.get_by_label("Tool name").fill("route-request")
    page.get_by_label("Description").fill("Say which team handles a customer's request.")
    page.get_by_role("button", name="Save tool settings").click()
    expect(page.get_by_text("Tool settings saved.")).to_be_visible()
    expect(page.get_by_test_id("schema-in-use")).to_contain_text('"text"')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mcp-tool.png"), full_page=True)
    assert axe_findings(page) == []
    tool = FlowTool.objects.get(flow=flow)
    assert tool.enabled and tool.name == "route-request"
