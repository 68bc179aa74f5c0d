"""Single-sign-on pieces that need no provider: the group → role rules and the password
switch. The sign-in itself is tested in the browser (tests/e2e/test_sso.py)."""

from __future__ import annotations

from django.test import override_settings

from apps.accounts.oidc import group_roles
from tests.factories import PERSONA_PASSWORD


@override_settings(
    OIDC_GROUP_ROLES=["fg-admins=acme:admin", "fg-all=acme:reviewer", "fg-x=globex:owner", "junk"]
)
def test_group_roles_take_the_highest_role_and_skip_bad_rules():
    assert group_roles(["fg-all"]) == {"acme": "reviewer"}
    assert group_roles(["fg-all", "fg-admins"]) == {"acme": "admin"}
    assert group_roles(["fg-x", "other"]) == {}


@override_settings(LOCAL_PASSWORDS=False, OIDC_ENABLED=True)
def test_with_local_passwords_off_a_password_log_in_is_refused(client, admin_user):
    response = client.post(
        "/accounts/login/", {"username": "ada", "password": PERSONA_PASSWORD}, follow=True
    )

    assert b"switched off" in response.content
    assert client.get("/w/acme/flows/").status_code == 302  # still logged out


def test_without_sso_configured_its_urls_are_404(client, db):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
