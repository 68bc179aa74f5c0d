"""The policy page in a real browser: the Rego editor under the page's CSP, the playground."""

from __future__ import annotations

import re

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


def test_used_by_lists_each_flow_once_and_tells_same_named_flows_apart(
    page: Page, admin_user, builder_user, workspace
):
    from apps.flows.models import Flow
    from apps.policies.services import policy_defaults_ensure
    from tests.runs.helpers import definition, node, published_flow

    policy_defaults_ensure(workspace=workspace, actor=admin_user, slugs=("claims",))

    def decide(node_id: str) -> dict:
        return node(
            node_id,
            "policy.evaluate",
            policy="claims",
            rule="route",
            routes=["approve", "review", "reject"],
            input={"risk": "trigger.body.risk", "amount": "trigger.body.amount"},
        )

    # One flow naming the policy in two nodes, in its draft and its published version.
    twice = definition(
        [node("start", "trigger.manual"), decide("first"), decide("second")],
        [("start", "first"), ("start", "second")],
    )
    published_flow(workspace, builder_user, twice, name="Claims triage")
    # An archived flow of the same name (replaced by the one above) is not listed.
    old = published_flow(workspace, builder_user, twice, name="Claims triage (old)")
    Flow.objects.filter(pk=old.pk).update(status="archived", name="Claims triage")
    log_in(page, "ada")
    page.goto("/w/acme/policies/claims/")

    used_by = page.locator("[data-used-by]")
    expect(used_by).to_have_count(1)
    expect(used_by).to_contain_text("Claims triage")
    expect(used_by).to_contain_text("published v1")
    used_by.get_by_role("link", name="Claims triage").click()
    expect(page).to_have_url(re.compile(r"/w/acme/flows/[0-9a-f-]+/$"))
