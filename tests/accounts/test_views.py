from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.accounts.models import Role
from apps.accounts.permissions import ROLE_CAPABILITIES
from apps.accounts.services import membership_set
from apps.shell.navigation import MAIN_NAVIGATION
from tests.factories import PERSONA_PASSWORD

LOGIN_URL = reverse("accounts:login")


def workspace_pages(slug: str) -> list[str]:
    """Every page of a workspace: the navigation is the list of sections."""
    return [
        reverse("shell:workspace_home", kwargs={"workspace_slug": slug}),
        *(reverse(item.url_name, kwargs={"workspace_slug": slug}) for item in MAIN_NAVIGATION),
    ]


# --- logging in and out ----------------------------------------------------------------
def test_login_with_the_right_password_lands_in_the_first_workspace(client, builder_user):
    response = client.post(
        LOGIN_URL, {"username": "bea", "password": PERSONA_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/w/acme/flows/"
    assert response.status_code == 200


def test_login_with_a_wrong_password_shows_a_form_error(client, builder_user):
    response = client.post(LOGIN_URL, {"username": "bea", "password": "wrong"})

    assert response.status_code == 200
    assert "That username and password do not match" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_repeated_failures_lock_the_login_even_for_the_right_password(client, builder_user):
    for _ in range(2):
        assert client.post(LOGIN_URL, {"username": "bea", "password": "wrong"}).status_code == 200

    third = client.post(LOGIN_URL, {"username": "bea", "password": "wrong"})
    after = client.post(LOGIN_URL, {"username": "bea", "password": PERSONA_PASSWORD})

    assert third.status_code == 429
    assert "Too many failed log-ins" in third.content.decode()
    assert after.status_code == 429
    assert "_auth_user_id" not in client.session


def test_logout_ends_the_session(builder_client):
    response = builder_client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert response.url == LOGIN_URL
    follow_up = builder_client.get("/w/acme/flows/")
    assert follow_up.status_code == 302
    assert follow_up.url.startswith(LOGIN_URL)


def test_anonymous_visitors_are_sent_to_the_login_page(client, workspace):
    for url in ["/", *workspace_pages("acme")]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(f"{LOGIN_URL}?next="), url


# --- workspaces ------------------------------------------------------------------------
def test_home_redirects_to_the_users_first_workspace(builder_client):
    response = builder_client.get("/")
    assert response.url == "/w/acme/flows/"


def test_a_reviewer_starts_at_the_inbox(reviewer_client):
    assert reviewer_client.get("/").url == "/w/acme/inbox/"
    assert reviewer_client.get("/w/acme/").url == "/w/acme/inbox/"


def test_user_switches_to_another_workspace_they_belong_to(
    admin_client, admin_user, other_workspace
):
    membership_set(user=admin_user, workspace=other_workspace, role=Role.REVIEWER)

    response = admin_client.get("/?workspace=globex", follow=True)

    assert response.redirect_chain[-1][0] == "/w/globex/inbox/"  # a reviewer's place
    assert response.context["workspace"] == other_workspace
    assert response.context["membership"].role == Role.REVIEWER


def test_switching_to_a_workspace_the_user_is_not_in_is_a_404(builder_client, other_workspace):
    assert builder_client.get("/?workspace=globex").status_code == 404


def test_unknown_workspace_is_a_404(builder_client):
    assert builder_client.get("/?workspace=nowhere").status_code == 404
    for url in workspace_pages("nowhere"):
        assert builder_client.get(url).status_code == 404, url


def test_user_without_a_workspace_is_told_so(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory(), backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/")

    assert response.status_code == 403
    assert "You are not in any workspace yet" in response.content.decode()


# --- isolation and roles ---------------------------------------------------------------
def test_outsider_gets_404_on_every_page_of_another_workspace(outsider_client, workspace):
    for url in workspace_pages("acme"):
        assert outsider_client.get(url).status_code == 404, url


def test_outsider_cannot_tell_a_foreign_workspace_from_a_missing_one(outsider_client, workspace):
    def without_csrf_token(response) -> str:  # the token is masked differently each time
        return re.sub(r'"X-CSRFToken": "[^"]+"', "", response.content.decode())

    foreign = outsider_client.get("/w/acme/flows/")
    missing = outsider_client.get("/w/nowhere/flows/")

    assert foreign.status_code == missing.status_code == 404
    assert without_csrf_token(foreign) == without_csrf_token(missing)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("item", MAIN_NAVIGATION, ids=lambda item: item.label)
def test_each_section_opens_exactly_for_roles_that_have_its_capability(
    client, workspace, role, item
):
    from tests.factories import MembershipFactory

    user = MembershipFactory(workspace=workspace, role=role).user
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

    response = client.get(reverse(item.url_name, kwargs={"workspace_slug": "acme"}))

    expected = 200 if item.capability in ROLE_CAPABILITIES[role] else 403
    assert response.status_code == expected


def test_builder_sees_their_role_and_only_the_sections_they_may_open(builder_client):
    page = builder_client.get("/w/acme/flows/").content.decode()

    assert 'class="role-badge role-builder">Builder<' in page
    for label in ["Flows", "Runs", "Inbox", "Models", "Policies", "Settings"]:
        assert f"</span>{label}" in page, label
    assert "</span>Audit" not in page


def test_admin_sees_every_section(admin_client):
    page = admin_client.get("/w/acme/flows/").content.decode()
    for item in MAIN_NAVIGATION:
        assert f"</span>{item.label}" in page, item.label


def test_a_forbidden_section_explains_the_role(builder_client):
    response = builder_client.get("/w/acme/audit/")

    assert response.status_code == 403
    page = response.content.decode()
    assert "Your role in this workspace does not allow this action" in page
    assert 'class="role-badge role-builder">Builder<' in page  # still inside the app shell
