"""A new builder's first hour in the editor: the webhook's URL and behaviour on the
trigger, a test input that follows the trigger's sample, a readable test-run step list."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from apps.flows import services
from tests.e2e.conftest import log_in
from tests.e2e.test_studio import _screenshot
from tests.runs.helpers import definition, node


def _webhook_flow(workspace, actor, **hook):
    review = definition(
        [
            node("hook", "trigger.webhook", mode="sync", **hook),
            node("review", "human.approval", title="Check {{ trigger.body.claim }}"),
            node("answer", "flow.respond", body={"ok": "true"}),
        ],
        [("hook", "review"), ("review", "answer", "approved")],
        name="Claims intake",
    )
    return services.flow_create(
        workspace=workspace, actor=actor, name="Claims intake", definition=review
    )


def test_the_webhook_trigger_shows_its_url_a_curl_line_and_what_a_caller_gets(
    page: Page, builder_user, workspace
):
    flow = _webhook_flow(workspace, builder_user, timeout_seconds=15)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.locator('.block-node[data-node-id="hook"]').click()
    panel = page.get_by_role("region", name="Webhook")
    url = panel.get_by_label("URL", exact=True)
    expect(url).to_have_value(f"{page.url.split('/w/')[0]}/hooks/{flow.webhook_token}")
    expect(panel.get_by_label("Try it with curl")).to_have_value(
        f"curl -X POST '{url.input_value()}' -H 'Content-Type: application/json' -d '{{}}'"
    )
    expect(panel.locator(".webhook-behaviour")).to_contain_text("waits up to 15 s")
    expect(panel.locator(".webhook-behaviour")).to_contain_text("If the run reaches review")
    expect(panel).to_contain_text("Publish the flow first")
    panel.get_by_role("button", name="Copy URL").click()
    expect(panel.get_by_role("button", name="Copy URL")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url.input_value()
    panel.scroll_into_view_if_needed()
    _screenshot(page, "webhook-panel")


def test_the_test_input_follows_the_triggers_sample_across_a_reload(
    page: Page, builder_user, workspace
):
    flow = _webhook_flow(workspace, builder_user)
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.get_by_role("tab", name="Test run").click()
    expect(page.locator("#sample-input")).to_have_value("{}")
    page.locator('.block-node[data-node-id="hook"]').click()
    sample = page.locator('.inspector [data-field="sample"]')
    sample.get_by_role("textbox").fill('{"claim": "C-7"}')
    expect(page.locator("#sample-input")).to_have_value('{\n  "claim": "C-7"\n}')
    expect(page.locator(".save-state")).to_have_attribute("data-save-state", "saved")
    page.reload()
    page.get_by_role("tab", name="Test run").click()
    expect(page.locator("#sample-input")).to_have_value('{\n  "claim": "C-7"\n}')


def test_the_test_runs_step_list_is_laid_out_as_a_list(page: Page, builder_user, workspace):
    chain = definition(
        [
            node("start", "trigger.manual"),
            node("one", "transform.set", values={"a": "1"}),
            node("two", "transform.set", values={"b": "2"}),
        ],
        [("start", "one"), ("one", "two")],
        name="Two steps",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Two steps", definition=chain
    )
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.get_by_role("button", name="Test run").click()
    steps = page.get_by_role("list", name="Steps")
    expect(steps.get_by_role("listitem")).to_have_count(3)
    box = steps.bounding_box()
    assert box is not None and box["height"] > 40  # three rows, not an 8 px bar
    output = page.locator(".test-run-result pre.json")
    expect(output).to_be_visible()
    assert output.bounding_box()["y"] >= box["y"] + box["height"]  # below, not under, the list


def test_a_refused_publish_says_whom_to_ask_and_links_to_them(
    page: Page, builder_user, admin_user, workspace
):
    risky = definition(
        [
            node("start", "trigger.manual"),
            node("call", "connector.http", url="https://evil.example.net/steal"),
        ],
        [("start", "call")],
        name="Risky call",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Risky call", definition=risky
    )
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Publish", exact=True).click()
    alert = page.get_by_role("dialog").get_by_role("alert")
    expect(alert).to_contain_text(f"Ask {admin_user} to publish this flow")
    alert.get_by_role("link", name="See the workspace's admins").click()
    expect(page).to_have_url(re.compile(r"/w/acme/settings/#members$"))
    expect(page.locator("#members")).to_contain_text(str(admin_user))


def test_rolling_back_asks_for_confirmation_first(page: Page, builder_user, workspace):
    first = definition(
        [node("start", "trigger.manual"), node("calc", "transform.set", values={"v": "1"})],
        [("start", "calc")],
        name="Versions",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Versions", definition=first
    )
    services.flow_publish(flow=flow, actor=builder_user, note="one")
    services.flow_publish(flow=flow, actor=builder_user, note="two")
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.get_by_role("tab", name="Versions").click()
    messages: list[str] = []

    def answer(dialog, accept):
        messages.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.get_by_role("row")).to_have_count(3)  # header + two versions: nothing published
    assert messages and "Roll back to version 1?" in messages[0]
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.get_by_role("row")).to_have_count(4)
    assert flow.versions.count() == 3


def test_an_expression_preview_shows_its_error_without_console_errors(
    page: Page, builder_user, workspace
):
    missing = definition(
        [
            node("start", "trigger.manual"),
            node("pick", "transform.set", values={"tier": "trigger.body.customer.tier"}),
        ],
        [("start", "pick")],
        name="Picky",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Picky", definition=missing
    )
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    page.locator('.block-node[data-node-id="pick"]').click()
    expect(page.locator(".inspector .expr-preview-error")).to_contain_text("no field 'customer'")
    page.locator(".inspector .map-value").fill("get(trigger.body, 'customer.tier', 'standard')")
    expect(page.locator(".inspector .expr-preview")).to_contain_text('"standard"')
    assert errors == []
