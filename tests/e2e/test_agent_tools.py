"""The tool picker of an ``ai.agent`` node, as a builder uses it: pick a published flow and an
action block from the inspector (keyboard only for the second), see the name, description
and parameters filled in, edit them (a bad name is flagged beside the field), let the draft
save, reload and find both tools as they were; the editor with the picker open has no
serious accessibility findings."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from apps.flows import services
from apps.flows.models import Flow
from apps.mlmodels.training import SUPPORT_WRITER
from tests.e2e.conftest import ARTIFACTS, log_in
from tests.e2e.test_accessibility import axe_findings
from tests.runs.helpers import definition, node


def _flows(workspace, builder_user) -> Flow:
    summarise = services.flow_create(
        workspace=workspace,
        actor=builder_user,
        name="Summarise",
        definition=definition(
            [
                node("start", "trigger.manual", sample={"note": "a text", "words": 20}),
                node("calc", "transform.set", values={"summary": "trigger.body.note"}),
            ],
            [("start", "calc")],
            name="Summarise",
        ),
    )
    services.flow_publish(flow=summarise, actor=builder_user)
    return services.flow_create(
        workspace=workspace,
        actor=builder_user,
        name="Order agent",
        definition=definition(
            [
                node("start", "trigger.manual", sample={"id": 42}),
                node(
                    "agent",
                    "ai.agent",
                    model=SUPPORT_WRITER,
                    goal="Find order {{ trigger.body.id }}.",
                    tools=[],
                ),
            ],
            [("start", "agent")],
            name="Order agent",
        ),
    )


def _scroll_inspector_to(page: Page, card) -> None:
    """Scroll the inspector (not the window) so that ``card`` is at its top."""
    card.evaluate(
        """(card) => {
          const body = card.closest(".inspector-body");
          body.scrollTop += card.getBoundingClientRect().top - body.getBoundingClientRect().top - 8;
        }"""
    )


def test_a_builder_picks_a_sub_flow_and_a_block_as_the_agents_tools(
    page: Page, workspace, builder_user
):
    flow = _flows(workspace, builder_user)
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.locator('.block-node[data-node-id="agent"]').click()
    tools = page.locator('.inspector [data-field="tools"]')
    picker = tools.get_by_label("Add a tool")
    expect(picker).to_be_enabled()

    # A published flow: its name, description and the schema of its sample input.
    picker.select_option(label="Summarise (summarise, v1)")
    expect(tools.locator(".tool-picker .help")).to_contain_text("Summarise")
    tools.get_by_role("button", name="Add tool").click()
    summary = tools.locator('.tool-card[data-tool="summarise"]')
    expect(summary.get_by_label("Name", exact=True)).to_have_value("summarise")
    expect(summary.get_by_label("Description")).to_have_value("Summarise")
    expect(summary.get_by_label("Parameters")).to_have_value(
        re.compile(r'"note": \{\s*"type": "string"')
    )
    expect(summary.get_by_role("list", name="Arguments the model writes")).to_contain_text(
        "words integer"
    )
    summary.get_by_label("Description").fill("Summarise a customer's note in a few words")

    # An action block, with the keyboard only: the open settings are the parameters.
    picker.focus()
    page.keyboard.type("HTTP")  # a closed select's type-ahead
    expect(picker).to_have_value("block:connector.http")
    expect(tools.locator(".tool-picker .help")).to_contain_text("Has side effects")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(picker).to_be_focused()  # back on the picker, ready for the next tool
    fetch = tools.locator(".tool-card").nth(1)
    expect(fetch.get_by_label("Name", exact=True)).to_have_value("http")
    expect(fetch.get_by_label("Parameters")).to_have_value(re.compile(r'"url"'))
    # A name the model cannot use is flagged beside the field, then fixed.
    fetch.get_by_label("Name", exact=True).fill("fetch order")
    expect(fetch.locator(".field-invalid")).to_contain_text("Name")
    expect(fetch.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    fetch.get_by_label("Name", exact=True).fill("summarise")
    expect(fetch).to_contain_text("another tool has this name")
    fetch.get_by_label("Name", exact=True).fill("fetch_order")
    expect(fetch.locator(".field-invalid")).to_have_count(0)
    # Fixing a setting takes it out of what the model fills.
    fetch.locator("summary", has_text="Fixed settings").click()
    fetch.locator(".tool-config").get_by_label("Method").select_option("POST")
    expect(fetch.get_by_label("Parameters")).not_to_have_value(re.compile(r'"method"'))

    assert axe_findings(page) == []
    expect(page.locator("[data-save-state]")).to_have_attribute(
        "data-save-state", "saved", timeout=15_000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1000})
    for card, name in ((summary, "agent-tools-picker"), (fetch, "agent-tools-block")):
        _scroll_inspector_to(page, card)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    flow.refresh_from_db()
    agent = next(n for n in flow.draft_definition["nodes"] if n["id"] == "agent")
    saved = {tool["name"]: tool for tool in agent["config"]["tools"]}
    assert saved["summarise"]["flow"] == "summarise"
    assert saved["summarise"]["description"] == "Summarise a customer's note in a few words"
    assert saved["summarise"]["parameters"]["properties"] == {
        "note": {"type": "string"},
        "words": {"type": "integer"},
    }
    assert saved["fetch_order"]["block"] == "connector.http"
    assert saved["fetch_order"]["config"] == {"method": "POST"}
    assert "url" in saved["fetch_order"]["parameters"]["properties"]
    assert "method" not in saved["fetch_order"]["parameters"]["properties"], json.dumps(saved)

    page.reload()
    page.locator('.block-node[data-node-id="agent"]').click()
    expect(tools.locator(".tool-card")).to_have_count(2)
    expect(
        tools.locator('.tool-card[data-tool="summarise"]').get_by_label("Description")
    ).to_have_value("Summarise a customer's note in a few words")
    expect(tools.locator('.tool-card[data-tool="fetch_order"]')).to_contain_text("connector.http")
