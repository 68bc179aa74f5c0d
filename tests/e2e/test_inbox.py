"""The reviewer sees a task arrive live, approves it from the keyboard, the run completes."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from apps.runs.models import Run
from tests.e2e.conftest import log_in
from tests.inbox.helpers import start_waiting_run
from tests.support.waiting import wait_for


def test_a_task_arrives_live_and_an_approval_completes_the_run(
    page, workspace, builder_user, reviewer_user
):
    log_in(page, "rui")
    page.goto("/w/acme/inbox/")
    expect(page.get_by_text("Nothing waiting here")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "on")

    run = start_waiting_run(workspace, builder_user, enqueue=True)

    rows = page.locator("[data-task-row]")
    expect(rows).to_have_count(1, timeout=20_000)
    expect(rows.first).to_contain_text("Claim C-17")
    expect(page.locator(".toast")).to_contain_text("New task: Claim C-17")
    expect(page.locator("[data-inbox-count]")).to_have_text("1")

    page.keyboard.press("j")
    expect(rows.first).to_have_class(re.compile("is-selected"))
    page.keyboard.press("o")
    expect(page.get_by_role("heading", name="Claim C-17")).to_be_visible()
    # Case data is shown as text, never as HTML.
    expect(page.locator(".case-data")).to_contain_text("<b>Wile E.</b>")

    page.get_by_label("Comment").fill("Receipt matches")
    page.get_by_role("heading", name="The case").click()  # leave the text box
    # a and r count once the page has been seen a moment (no double press deciding two).
    expect(page.locator("body")).to_have_attribute("data-decision-keys", "on")
    page.keyboard.press("a")
    expect(page.get_by_text("Approved: Claim C-17")).to_be_visible()

    finished = wait_for(lambda: Run.objects.filter(pk=run.pk, status="succeeded").first())
    assert finished.output == {"paid": True, "by": "rui"}


# Every Content-Security-Policy refusal on the page, as the browser reports it.
CSP_WATCH = """
window.cspRefusals = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspRefusals.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""


def test_the_inbox_breaks_no_csp_rule_through_swaps_toasts_and_empty_states(
    page, workspace, builder_user, reviewer_user
):
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.add_init_script(CSP_WATCH)
    log_in(page, "rui")
    page.goto("/w/acme/inbox/")
    expect(page.get_by_text("Nothing waiting here")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "on")

    start_waiting_run(workspace, builder_user, enqueue=True)
    rows = page.locator("[data-task-row]")
    expect(rows).to_have_count(1, timeout=20_000)
    expect(page.locator(".toast")).to_contain_text("New task: Claim C-17")
    # Filters swap the list by htmx: an empty result, then the task again.
    search = page.get_by_label("Search")
    search.fill("no such claim")
    search.press("End")  # the list follows the search box on keyup
    expect(rows).to_have_count(0)
    search.fill("C-17")
    search.press("End")
    expect(rows).to_have_count(1)
    page.get_by_label("Status").select_option("decided")
    expect(rows).to_have_count(0)
    page.get_by_label("Status").select_option("open")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Claim C-17")).to_be_visible()
    page.get_by_label("Comment").fill("Fine")
    page.get_by_role("button", name=re.compile("^Approve")).click()
    expect(page.get_by_text("Approved: Claim C-17")).to_be_visible()
    page.goto("/w/acme/inbox/")
    expect(page.get_by_text("Nothing waiting here")).to_be_visible()

    assert page.evaluate("window.cspRefusals") == []
    assert [error for error in errors if "Content Security Policy" in error] == []
