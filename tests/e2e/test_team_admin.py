"""An admin's journeys in the browser: create a workspace, invite a colleague (by a real
SMTP server on loopback), who accepts as a new user; change their role; deactivate them
while they are logged in."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from apps.accounts.models import Membership, User
from tests.e2e.conftest import log_in
from tests.support.smtp import notifications_connection, smtp_server
from tests.support.waiting import wait_for

SHOTS = "tests/e2e/artifacts"
PASSWORD = "a-long-and-unusual-passphrase-42"


def _shot(page, name: str) -> None:
    page.screenshot(path=f"{SHOTS}/team-{name}.png", full_page=True)


def test_an_admin_creates_a_workspace_and_switches_to_it(page, workspace, admin_user):
    log_in(page, "ada")
    page.get_by_role("link", name="All workspaces").click()
    page.get_by_label("Name").fill("Finance Ops")
    page.get_by_role("button", name="Create workspace").click()

    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    expect(page).to_have_url(re.compile("/w/finance-ops/settings/members/"))
    expect(page.get_by_label("Workspace")).to_have_value("finance-ops")
    _shot(page, "members-new-workspace")

    page.get_by_label("Workspace").select_option("acme")
    expect(page).to_have_url(re.compile("/w/acme/"))

    page.goto("/w/finance-ops/settings/workspace/")
    page.get_by_label("Name").fill("Finance")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_text("Workspace renamed.")).to_be_visible()
    _shot(page, "workspace-settings")
    page.get_by_role("button", name="Archive Finance").click()
    row = page.locator("[data-workspace-row=finance-ops]")
    expect(row).to_contain_text("archived")
    _shot(page, "workspaces")
    row.get_by_role("button", name="Restore").click()
    expect(row).not_to_contain_text("archived")


def test_invite_accept_change_role_and_deactivate(open_page, studio_url, workspace, admin_user):
    with smtp_server() as (controller, mailbox):
        notifications_connection(workspace, admin_user, controller.port)
        admin = open_page(studio_url)
        log_in(admin, "ada")
        admin.goto("/w/acme/settings/members/")
        admin.get_by_label("Email address").fill("nina@example.com")
        admin.get_by_label("Role", exact=True).select_option("reviewer")
        admin.get_by_role("button", name="Send invitation").click()
        expect(admin.get_by_text("Invitation emailed to nina@example.com")).to_be_visible()
        expect(admin.locator("[data-invitation='nina@example.com']")).to_contain_text("Reviewer")
        _shot(admin, "members-invited")

        # Inviting her again while she is pending resends; inviting a member is a message.
        admin.get_by_label("Email address").fill("ada@example.com")
        admin.get_by_role("button", name="Send invitation").click()
        expect(admin.get_by_role("alert")).to_contain_text("already a member of Acme")

        [(_, _, message)] = wait_for(lambda: mailbox.messages or None)
    link = re.search(r"Accept: (\S+)", message.get_content()).group(1)

    newcomer = open_page(studio_url)
    newcomer.goto(urlsplit(link).path)
    expect(newcomer.get_by_role("heading", name="Join Acme")).to_be_visible()
    _shot(newcomer, "invitation-accept")
    newcomer.get_by_label("Username").fill("nina")
    newcomer.get_by_label("Your name").fill("Nina Newcomer")
    newcomer.get_by_label("Password").fill(PASSWORD)
    newcomer.get_by_role("button", name="Create account and join").click()
    expect(newcomer.get_by_text("Welcome to Acme.")).to_be_visible()
    expect(newcomer).to_have_url(re.compile("/w/acme/inbox/"))  # a reviewer starts there

    # The link worked once.
    again = open_page(studio_url)
    again.goto(urlsplit(link).path)
    expect(again.get_by_role("heading", name="This invitation cannot be used")).to_be_visible()
    expect(again.get_by_text("already been used")).to_be_visible()
    _shot(again, "invitation-used")

    admin.goto("/w/acme/settings/members/")
    row = admin.locator("[data-member=nina]")
    row.get_by_label("Role of nina").select_option("builder")
    row.get_by_role("button", name="Change role of nina").click()
    expect(admin.locator("[data-member=nina] select")).to_have_value("builder")
    nina = User.objects.get(username="nina")
    assert wait_for(lambda: Membership.objects.filter(user=nina, role="builder").first())

    # The last admin cannot demote themselves: the row says why, nothing changes.
    me = admin.locator("[data-member=ada]")
    me.get_by_label("Role of ada").select_option("reviewer")
    me.get_by_role("button", name="Change role of ada").click()
    expect(admin.locator("[data-member=ada]").get_by_role("alert")).to_contain_text("last admin")
    expect(admin.locator("[data-member=ada] select")).to_have_value("admin")
    _shot(admin, "members-last-admin")

    admin.on("dialog", lambda dialog: dialog.accept())
    admin.locator("[data-member=nina]").get_by_role("button", name="Deactivate nina").click()
    expect(admin.locator("[data-member=nina]")).to_contain_text("deactivated")

    # Nina's open browser is logged out at once.
    newcomer.goto("/w/acme/flows/")
    expect(newcomer).to_have_url(re.compile("/accounts/login/"))


def test_a_builder_requests_a_publish_and_an_admin_approves_it_from_the_inbox(
    open_page, studio_url, workspace, builder_user, admin_user
):
    from apps.flows.models import FlowVersion
    from apps.flows.services import flow_create
    from tests.flows.test_publish_requests import RISKY

    flow = flow_create(workspace=workspace, actor=builder_user, name="Risky", definition=RISKY)
    builder = open_page(studio_url)
    log_in(builder, "bea")
    builder.goto(f"/w/acme/flows/{flow.id}/")
    builder.get_by_role("link", name="Request publish").click()
    expect(builder.locator("[data-diff]")).to_contain_text("call")
    builder.get_by_label("Note for the admin").fill("Calls the new partner API")
    builder.get_by_role("button", name="Request publish").click()
    expect(builder.get_by_text("Requested: an admin will see it in their inbox.")).to_be_visible()
    expect(builder.locator("[data-gate]")).to_contain_text("denied")
    _shot(builder, "publish-request-sent")

    admin = open_page(studio_url)
    log_in(admin, "ada")
    admin.goto("/w/acme/inbox/")
    requests = admin.locator("[data-publish-request]")
    expect(requests).to_contain_text("Calls the new partner API")
    _shot(admin, "inbox-publish-requests")
    requests.get_by_role("link", name="Risky").click()
    expect(admin.get_by_text("an admin must publish this flow")).to_be_visible()
    admin.get_by_label("Comment").fill("Partner vetted")
    admin.get_by_role("button", name="Approve and publish").click()
    expect(admin.get_by_text("Approved: Risky v1 is live.")).to_be_visible()
    expect(admin.locator("[data-request-status]")).to_have_text("Approved")
    expect(admin.locator("[data-diff]")).to_contain_text("call")
    _shot(admin, "publish-request-approved")
    assert FlowVersion.objects.get(flow=flow).published_by == admin_user


def test_an_admin_makes_a_reviewer_group(page, workspace, admin_user, reviewer_user):
    log_in(page, "ada")
    page.goto("/w/acme/settings/")
    page.get_by_role("link", name="Groups").click()
    page.get_by_label("Group name").fill("Finance approvers")
    page.get_by_role("button", name="Create group").click()
    group = page.locator("[data-group=finance-approvers]")
    group.get_by_label("Rui").check()
    group.get_by_role("button", name="Save members of Finance approvers").click()
    expect(page.get_by_text("Saved the members of Finance approvers.")).to_be_visible()
    expect(page.locator("[data-group=finance-approvers]").get_by_label("Rui")).to_be_checked()
    _shot(page, "groups")
