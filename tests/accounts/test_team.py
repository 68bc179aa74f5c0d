"""Team administration services: roles, the last admin, removal, deactivation, workspaces."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from apps.accounts.models import ApiToken, Membership, Role, Workspace
from apps.accounts.selectors import membership_list
from apps.accounts.services import api_token_create
from apps.accounts.team import (
    TeamError,
    membership_change_role,
    membership_remove,
    user_set_active,
    workspace_archive,
    workspace_open,
    workspace_rename,
)
from apps.audit.models import AuditEvent
from tests.factories import PERSONA_PASSWORD, MembershipFactory


def test_a_role_change_is_audited_with_before_and_after(workspace, admin_user, builder_user):
    membership_change_role(
        workspace=workspace, actor=admin_user, user_id=builder_user.pk, role="reviewer"
    )

    assert Membership.objects.get(user=builder_user, workspace=workspace).role == "reviewer"
    event = AuditEvent.objects.get(workspace=workspace, action="membership.role_changed")
    assert event.actor == admin_user
    assert event.data == {"user": "bea", "before": "builder", "after": "reviewer"}


def test_the_last_admin_cannot_demote_or_remove_themselves(workspace, admin_user):
    with pytest.raises(TeamError, match="last admin") as demoting:
        membership_change_role(
            workspace=workspace, actor=admin_user, user_id=admin_user.pk, role="builder"
        )
    with pytest.raises(TeamError, match="last admin"):
        membership_remove(workspace=workspace, actor=admin_user, user_id=admin_user.pk)

    assert demoting.value.status == 409
    assert Membership.objects.get(user=admin_user, workspace=workspace).role == Role.ADMIN


def test_with_a_second_admin_one_may_step_down(workspace, admin_user):
    second = MembershipFactory(workspace=workspace, role=Role.ADMIN).user

    membership_change_role(
        workspace=workspace, actor=admin_user, user_id=admin_user.pk, role="builder"
    )

    with pytest.raises(TeamError, match="last admin"):
        membership_remove(workspace=workspace, actor=second, user_id=second.pk)


def test_a_stale_role_change_changes_nothing_and_names_the_current_role(
    workspace, admin_user, builder_user
):
    membership_change_role(
        workspace=workspace, actor=admin_user, user_id=builder_user.pk, role="admin"
    )

    with pytest.raises(TeamError, match="changed Bea's role to admin") as stale:
        membership_change_role(
            workspace=workspace,
            actor=admin_user,
            user_id=builder_user.pk,
            role="reviewer",
            expected_role="builder",
        )

    assert stale.value.code == "conflict"
    assert stale.value.current.role == "admin"
    assert Membership.objects.get(user=builder_user, workspace=workspace).role == "admin"


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(workspace):
    first = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    second = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    barrier, outcomes = threading.Barrier(2), []

    def demote(actor, target):
        barrier.wait()
        try:
            membership_change_role(
                workspace=workspace, actor=actor, user_id=target.pk, role="builder"
            )
            outcomes.append("changed")
        except TeamError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["changed", "last_admin"]
    assert Membership.objects.filter(workspace=workspace, role=Role.ADMIN).count() == 1


def test_an_unknown_role_is_refused(workspace, admin_user, builder_user):
    with pytest.raises(TeamError, match="unknown role"):
        membership_change_role(
            workspace=workspace, actor=admin_user, user_id=builder_user.pk, role="owner"
        )


def test_deactivating_ends_sessions_and_revokes_tokens_at_once(workspace, admin_user, builder_user):
    browser = Client()
    browser.post("/accounts/login/", {"username": "bea", "password": PERSONA_PASSWORD})
    assert browser.get("/w/acme/flows/").status_code == 200
    secret = api_token_create(user=builder_user, workspace=workspace, name="ci").secret

    user_set_active(workspace=workspace, actor=admin_user, user_id=builder_user.pk, active=False)

    assert browser.get("/w/acme/flows/").status_code == 302  # to the log-in page
    api = Client().get("/api/w/acme/flows/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.status_code == 401
    assert ApiToken.objects.get(user=builder_user).revoked_at is not None
    event = AuditEvent.objects.get(workspace=workspace, action="user.deactivated")
    assert event.data["sessions_ended"] == 1 and event.data["tokens_revoked"] == 1
    again = Client().post("/accounts/login/", {"username": "bea", "password": PERSONA_PASSWORD})
    assert again.status_code == 200  # the form again, not a redirect into the studio


def test_an_admin_cannot_deactivate_a_member_of_a_workspace_they_do_not_run(
    workspace, other_workspace, admin_user, builder_user
):
    MembershipFactory(user=builder_user, workspace=other_workspace, role=Role.BUILDER)

    with pytest.raises(TeamError, match="also belongs to Globex"):
        user_set_active(
            workspace=workspace, actor=admin_user, user_id=builder_user.pk, active=False
        )
    with pytest.raises(TeamError, match="your own account"):
        user_set_active(workspace=workspace, actor=admin_user, user_id=admin_user.pk, active=False)


def test_removing_a_member_revokes_their_tokens_for_that_workspace_only(
    workspace, other_workspace, admin_user, builder_user
):
    MembershipFactory(user=builder_user, workspace=other_workspace, role=Role.BUILDER)
    here = api_token_create(user=builder_user, workspace=workspace, name="here").token
    there = api_token_create(user=builder_user, workspace=other_workspace, name="there").token

    membership_remove(workspace=workspace, actor=admin_user, user_id=builder_user.pk)

    here.refresh_from_db(), there.refresh_from_db()
    assert here.revoked_at is not None and there.revoked_at is None
    assert [m.workspace.slug for m in membership_list(user=builder_user)] == ["globex"]


def test_workspaces_are_created_renamed_archived_and_restored(admin_user):
    created = workspace_open(name="Finance Ops", actor=admin_user)
    assert created.slug == "finance-ops"
    assert Membership.objects.get(workspace=created, user=admin_user).role == Role.ADMIN

    workspace_rename(workspace=created, actor=admin_user, name="Finance")
    workspace_archive(workspace=created, actor=admin_user)
    assert "finance-ops" not in [m.workspace.slug for m in membership_list(user=admin_user)]
    workspace_archive(workspace=created, actor=admin_user, archived=False)

    actions = list(
        AuditEvent.objects.filter(workspace=created)
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == [
        "workspace.created",
        "workspace.renamed",
        "workspace.archived",
        "workspace.restored",
    ]


def test_a_taken_address_or_an_empty_name_is_refused(workspace, admin_user):
    with pytest.raises(TeamError, match="'acme' is taken"):
        workspace_open(name="Acme", actor=admin_user)
    with pytest.raises(TeamError, match="needs a name"):
        workspace_open(name="  ", actor=admin_user)
    assert Workspace.objects.count() == 1


def test_an_archived_workspace_is_a_404(admin_client, workspace, admin_user):
    workspace_archive(workspace=workspace, actor=admin_user)

    assert admin_client.get("/w/acme/flows/").status_code == 404
    page = admin_client.get("/accounts/workspaces/")
    assert b"archived" in page.content and b"Restore" in page.content


def test_a_stale_role_form_swaps_in_the_current_row_with_the_reason(
    admin_client, workspace, admin_user, builder_user
):
    membership_change_role(
        workspace=workspace, actor=admin_user, user_id=builder_user.pk, role="reviewer"
    )

    response = admin_client.post(
        f"/w/acme/settings/members/{builder_user.pk}/role/",
        {"role": "admin", "expected_role": "builder"},
        HTTP_HX_REQUEST="true",
    )

    body = response.content.decode()
    assert response.status_code == 422  # htmx swaps it in (base.html's responseHandling)
    assert "changed Bea&#x27;s role to reviewer meanwhile" in body
    assert '<option value="reviewer" selected>' in body
    assert Membership.objects.get(user=builder_user).role == "reviewer"


def test_members_page_is_read_only_for_builders(builder_client, workspace, admin_user):
    page = builder_client.get("/w/acme/settings/members/").content.decode()
    assert "ada@example.com" in page and "Send invitation" not in page and "Deactivate" not in page
    refused = builder_client.post(
        f"/w/acme/settings/members/{admin_user.pk}/active/", {"active": "0"}
    )
    assert refused.status_code == 403
