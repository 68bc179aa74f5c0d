"""The policy page in a real browser: the Rego editor under the page's CSP, the playground."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from apps.policies import services
from apps.policies.models import Policy
from tests.e2e.conftest import log_in

SOURCE = 'package demo.limits\n\ndecision := "approve" if input.amount < 100\n\nelse := "review"\n'


def test_admin_edits_rego_in_the_editor_and_tries_it_in_the_playground(
    page: Page, admin_user, workspace
):
    services.policy_create(
        workspace=workspace, actor=admin_user, slug="limits", name="Limits", source=SOURCE
    )
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    log_in(page, "ada")
    page.goto("/w/acme/policies/limits/")

    editor = page.locator(".cm-editor")
    expect(editor.locator(".cm-line").first).to_have_text("package demo.limits")
    # CodeMirror's own styles applied (its <style> admitted by the CSP nonce): a flex box
    # with a gutter beside the text, not the bare lines the CSP left before.
    assert editor.evaluate("element => getComputedStyle(element).display") == "flex"
    expect(editor.locator(".cm-gutters")).to_be_visible()
    assert refused == []

    editor.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type('\nlabel := "demo"\n')
    with page.expect_response(lambda response: response.request.method == "POST"):
        page.get_by_role("button", name="Save draft (compile check)").click()
    expect(page.locator("#compile-errors")).to_contain_text("Saved · compiles")
    assert 'label := "demo"' in Policy.objects.get(workspace=workspace, slug="limits").draft_source

    playground = page.locator("[data-playground-form]")
    expect(playground.get_by_label("Rule")).to_have_value("decision")
    playground.get_by_label("Input").fill('{"amount": 5')
    playground.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#playground-result [role=alert]")).to_contain_text("not valid JSON")
    playground.get_by_label("Input").fill('{"amount": 5}')
    playground.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#playground-result")).to_contain_text('"approve"')
