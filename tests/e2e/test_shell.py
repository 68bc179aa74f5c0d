"""Logging in, the app shell, switching workspace, logging out — in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from apps.accounts.models import Role
from apps.accounts.services import membership_set
from tests.e2e.conftest import log_in
from tests.factories import WorkspaceFactory

BUILDER_SECTIONS = ["Flows", "Runs", "Inbox", "Models", "Policies", "Dashboard", "Settings"]


def test_builder_logs_in_and_sees_the_shell(page: Page, builder_user):
    log_in(page, "bea")

    expect(page).to_have_url(re.compile(r"/w/acme/flows/$"))
    navigation = page.get_by_role("navigation").get_by_role("link")
    # A section may show a count beside its name (the inbox's open tasks).
    expect(navigation).to_have_text(
        [re.compile(rf"^\s*{name}\s*\d*\s*$") for name in BUILDER_SECTIONS]
    )
    expect(page.locator(".role-badge")).to_have_text("Builder")
    expect(page.get_by_role("heading", name="Flows", exact=True)).to_be_visible()
    expect(page.locator(".empty-state")).to_contain_text("No flows yet")
    expect(page.locator("body")).to_have_attribute("data-live", "on")  # workspace WebSocket open


def test_wrong_password_shows_an_error_on_the_login_page(page: Page, builder_user):
    log_in(page, "bea", password="not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("That username and password do not match")


def test_admin_switches_workspace_with_the_selector_and_logs_out(page: Page, admin_user):
    sandbox = WorkspaceFactory(slug="sandbox", name="Sandbox")
    membership_set(user=admin_user, workspace=sandbox, role=Role.ADMIN)
    log_in(page, "ada")
    expect(page.get_by_role("navigation").get_by_role("link", name="Audit")).to_be_visible()

    page.get_by_label("Workspace").select_option(label="Sandbox")  # submits on change

    expect(page).to_have_url(re.compile(r"/w/sandbox/flows/$"))
    expect(page.get_by_label("Workspace")).to_have_value("sandbox")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    page.goto("/w/sandbox/flows/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
