"""The team administration API: JSON in, JSON out, refusals as 4xx with a message."""

from __future__ import annotations

from apps.accounts.models import Invitation, Membership, Role, Workspace
from apps.accounts.services import api_token_create


def _bearer(user, workspace):
    return {
        "HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, workspace=workspace, name='t').secret}"
    }


def test_an_admin_invites_changes_a_role_and_removes_a_member(
    client, workspace, admin_user, builder_user
):
    auth = _bearer(admin_user, workspace)

    invited = client.post(
        "/api/w/acme/invitations/", {"email": "n@x.io", "role": "reviewer"},
        content_type="application/json", **auth,
    )  # fmt: skip
    assert invited.status_code == 201
    assert invited.json()["emailed"] is False and "/accounts/invitations/" in invited.json()["link"]
    listed = client.get("/api/w/acme/invitations/", **auth).json()["results"]
    assert [i["email"] for i in listed] == ["n@x.io"] and "link" not in listed[0]

    changed = client.patch(
        "/api/w/acme/members/bea/", {"role": "reviewer", "expected_role": "builder"},
        content_type="application/json", **auth,
    )  # fmt: skip
    assert changed.status_code == 200 and changed.json()["role"] == "reviewer"

    stale = client.patch(
        "/api/w/acme/members/bea/", {"role": "admin", "expected_role": "builder"},
        content_type="application/json", **auth,
    )  # fmt: skip
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "conflict"
    assert stale.json()["error"]["current"]["role"] == "reviewer"

    assert client.delete("/api/w/acme/members/bea/", **auth).status_code == 204
    assert not Membership.objects.filter(user=builder_user).exists()


def test_bad_input_is_a_4xx_with_a_message(client, workspace, admin_user, builder_user):
    auth = _bearer(admin_user, workspace)

    member = client.post(
        "/api/w/acme/invitations/",
        {"email": "bea@example.com"},
        content_type="application/json",
        **auth,
    )
    assert member.status_code == 409 and "already a member" in member.json()["error"]["message"]
    bad_email = client.post(
        "/api/w/acme/invitations/", {"email": "nope"}, content_type="application/json", **auth
    )
    assert bad_email.status_code == 400
    last = client.patch(
        "/api/w/acme/members/ada/",
        {"role": "builder"},
        content_type="application/json",
        **auth,
    )
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_admin"
    assert (
        client.patch(
            "/api/w/acme/members/nobody/",
            {"role": "builder"},
            content_type="application/json",
            **auth,
        ).status_code
        == 404
    )
    assert not Invitation.objects.exists()


def test_builders_see_members_but_cannot_change_them(client, workspace, admin_user, builder_user):
    auth = _bearer(builder_user, workspace)

    assert client.get("/api/w/acme/members/", **auth).status_code == 200
    response = client.patch(
        "/api/w/acme/members/ada/",
        {"role": "builder"},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 403
    assert client.get("/api/w/acme/invitations/", **auth).status_code == 403


def test_workspaces_are_created_renamed_and_archived_through_the_api(
    admin_client, workspace, admin_user
):
    created = admin_client.post(
        "/api/workspaces/", {"name": "Finance"}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json() == {
        "slug": "finance",
        "name": "Finance",
        "archived": False,
        "role": "admin",
    }
    taken = admin_client.post("/api/workspaces/", {"name": "Acme"}, content_type="application/json")
    assert taken.status_code == 409

    admin_client.patch(
        "/api/workspaces/finance/",
        {"name": "Finance EU", "archived": True},
        content_type="application/json",
    )
    finance = Workspace.objects.get(slug="finance")
    assert finance.name == "Finance EU" and finance.archived_at is not None
    listed = admin_client.get("/api/workspaces/").json()["results"]
    assert {w["slug"]: w["archived"] for w in listed} == {"acme": False, "finance": True}


def test_only_admins_change_a_workspace(builder_client, workspace, builder_user):
    response = builder_client.patch(
        "/api/workspaces/acme/", {"name": "X"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert (
        builder_client.patch(
            "/api/workspaces/globex/", {"name": "X"}, content_type="application/json"
        ).status_code
        == 404
    )
    assert Membership.objects.get(user=builder_user).role == Role.BUILDER
