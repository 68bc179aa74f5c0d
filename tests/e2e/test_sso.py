"""Single sign-on in the browser against a real OpenID Connect provider (node
``oidc-provider``) on loopback: the first log-in creates the account with the role its IdP
group maps to, or links the existing account by email; a missing email claim, a wrong
issuer and a forged state end on the log-in page with a sentence, and create nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.models import Membership, User
from tests.e2e.conftest import serve_studio
from tests.support.oidc import OidcProvider, oidc_provider
from tests.support.processes import free_ports

SHOTS = "tests/e2e/artifacts"
ACCOUNTS = {
    "carol": {"email": "carol@corp.example", "name": "Carol Corp", "groups": ["fg-builders"]},
    "ada": {"email": "ADA@example.com", "name": "Ada Admin", "groups": []},
    "nomail": {"name": "No Mail"},
}


@pytest.fixture
def sso(test_database_url: str) -> Iterator[tuple[str, OidcProvider]]:
    port, provider_port = free_ports(2)
    redirect_uri = f"http://127.0.0.1:{port}/oidc/callback/"
    with oidc_provider(
        port=provider_port, redirect_uri=redirect_uri, accounts=ACCOUNTS
    ) as provider:
        settings = provider.settings(OIDC_GROUP_ROLES="fg-builders=acme:builder")
        with serve_studio(test_database_url, port=port, **settings) as url:
            yield url, provider


def sign_in(page: Page, login: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Log in with Corp SSO").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def test_the_first_sso_log_in_creates_the_user_with_the_groups_role(sso, open_page, workspace):
    url, _ = sso
    page = open_page(url)
    page.goto("/accounts/login/")
    page.screenshot(path=f"{SHOTS}/sso-login.png", full_page=True)

    sign_in(page, "carol")

    expect(page).to_have_url(re.compile("/w/acme/flows/"))
    expect(page.locator(".who-name")).to_have_text("Carol Corp")
    carol = User.objects.get(email="carol@corp.example")
    assert carol.username == "carol" and not carol.has_usable_password()
    assert Membership.objects.get(user=carol, workspace=workspace).role == "builder"


def test_sso_links_the_existing_account_by_email(sso, open_page, workspace, admin_user):
    url, _ = sso
    page = open_page(url)

    sign_in(page, "ada")

    expect(page).to_have_url(re.compile("/w/acme/"))
    expect(page.locator(".who-name")).to_have_text("Ada")
    assert User.objects.count() == 1
    assert Membership.objects.get(user=admin_user).role == "admin"


def test_a_missing_email_claim_is_a_readable_error_and_creates_nothing(sso, open_page, workspace):
    url, _ = sso
    page = open_page(url)

    sign_in(page, "nomail")

    expect(page).to_have_url(re.compile("/accounts/login/"))
    expect(page.get_by_role("status")).to_contain_text("sent no email address")
    page.screenshot(path=f"{SHOTS}/sso-error.png", full_page=True)
    assert not User.objects.exists()


def test_a_forged_state_is_a_readable_error(sso, open_page, workspace):
    url, _ = sso
    page = open_page(url)
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Log in with Corp SSO").click()  # a sign-in under way
    expect(page.locator("input[name=login]")).to_be_visible()

    page.goto(f"{url}/oidc/callback/?code=stolen&state=forged")

    expect(page.get_by_role("status")).to_contain_text("could not be verified")
    page.goto(f"{url}/oidc/callback/?code=stolen&state=forged")  # no sign-in under way now
    expect(page.get_by_role("status")).to_contain_text("Single sign-on did not log you in")
    assert not User.objects.exists()


def test_a_wrong_issuer_is_refused_and_passwords_can_be_switched_off(
    test_database_url, open_page, workspace, admin_user
):
    port, provider_port = free_ports(2)
    redirect_uri = f"http://127.0.0.1:{port}/oidc/callback/"
    with oidc_provider(
        port=provider_port, redirect_uri=redirect_uri, accounts=ACCOUNTS
    ) as provider:
        settings = provider.settings(
            OIDC_OP_ISSUER="https://login.corp.example", LOCAL_PASSWORDS="false"
        )
        with serve_studio(test_database_url, port=port, **settings) as url:
            page = open_page(url)
            page.goto("/accounts/login/")
            expect(page.get_by_label("Password")).to_have_count(0)

            sign_in(page, "carol")

            expect(page.get_by_role("status")).to_contain_text("not the configured issuer")
            assert not User.objects.filter(email="carol@corp.example").exists()
