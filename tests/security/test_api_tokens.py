"""API tokens: optional expiry, a read-only scope, admins oversee every token, and a rate
limit per token (issues 16 and 18)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create, api_token_revoke
from apps.core import ratelimit

pytestmark = pytest.mark.django_db
RUNS = "/api/w/acme/runs/"
TOKENS_API = "/api/w/acme/tokens/"
TOKENS_PAGE = "/w/acme/settings/tokens/"


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_read_only_token_reads_and_gets_403_on_every_unsafe_method(
    client, workspace, builder_user
):
    issued = api_token_create(user=builder_user, workspace=workspace, name="BI", scope="read")
    secret = issued.secret
    assert client.get(RUNS, **bearer(secret)).status_code == 200
    for method, path in [
        ("post", "/api/w/acme/expressions/preview/"),
        ("post", TOKENS_API),
        ("delete", f"{TOKENS_API}{issued.token.id}/"),
        ("put", "/api/w/acme/flows/00000000-0000-0000-0000-000000000000/draft/"),
    ]:
        response = getattr(client, method)(
            path,
            {"expression": "1", "name": "x"},
            content_type="application/json",
            **bearer(secret),
        )
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["message"] == (
            "This API token is read-only: it cannot change anything."
        )
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None and ApiToken.objects.count() == 1


def test_expired_and_revoked_tokens_get_401_saying_so(client, workspace, builder_user):
    expiring = api_token_create(
        user=builder_user,
        workspace=workspace,
        name="short",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    assert client.get(RUNS, **bearer(expiring.secret)).status_code == 200
    ApiToken.objects.filter(pk=expiring.token.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    expired = client.get(RUNS, **bearer(expiring.secret))
    assert expired.status_code == 401
    assert expired.json()["error"]["message"].startswith("This API token expired on ")

    revoked = api_token_create(user=builder_user, workspace=workspace, name="gone")
    api_token_revoke(token=revoked.token)
    answer = client.get(RUNS, **bearer(revoked.secret))
    assert answer.status_code == 401
    assert answer.json()["error"]["message"].startswith("This API token was revoked on ")
    unknown = client.get(RUNS, **bearer("fg_not-a-token"))
    assert unknown.json()["error"]["message"] == "Invalid API token."


def test_tokens_through_the_api_admins_see_and_revoke_every_members_token(
    builder_client, admin_client, reviewer_client, client
):
    expiry = (timezone.now() + timedelta(days=30)).isoformat()
    created = builder_client.post(
        TOKENS_API,
        {"name": "ERP", "scope": "read", "expires_at": expiry},
        content_type="application/json",
    )
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    body = created.json()
    secret, token_id = body["token"], body["id"]
    assert body["scope"] == "read" and body["expires_at"] and body["owner"] == "bea"
    past = builder_client.post(
        TOKENS_API,
        {"name": "old", "expires_at": "2001-01-01T00:00:00Z"},
        content_type="application/json",
    )
    assert past.status_code == 400
    assert past.json()["error"]["fields"]["expires_at"] == ["the expiry must be in the future"]

    assert client.get(RUNS, **bearer(secret)).status_code == 200
    listed = builder_client.get(TOKENS_API).json()
    assert [token["name"] for token in listed] == ["ERP"]
    assert listed[0]["last_used_at"] is not None and "token" not in listed[0]
    assert reviewer_client.get(TOKENS_API).json() == []
    assert reviewer_client.delete(f"{TOKENS_API}{token_id}/").status_code == 404

    everyone = admin_client.get(TOKENS_API).json()
    assert [(token["name"], token["owner"]) for token in everyone] == [("ERP", "bea")]
    assert admin_client.delete(f"{TOKENS_API}{token_id}/").status_code == 204
    assert client.get(RUNS, **bearer(secret)).status_code == 401


def test_tokens_page_sets_scope_and_expiry_and_admins_revoke_any_token(
    builder_client, admin_client, client
):
    page = builder_client.post(
        TOKENS_PAGE, {"name": "Nightly export", "scope": "read", "expires_in_days": "30"}
    )
    assert page.status_code == 200
    secret = re.search(r'value="(fg_[^"]+)"', page.content.decode()).group(1)
    token = ApiToken.objects.get(name="Nightly export")
    assert token.read_only
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    listing = builder_client.get(TOKENS_PAGE).content.decode()
    assert "read-only" in listing and token.expires_at.strftime("%Y-%m-%d") in listing
    assert "Every token in Acme" not in listing

    admin_page = admin_client.get(TOKENS_PAGE).content.decode()
    assert "Every token in Acme" in admin_page and "Nightly export" in admin_page
    revoke = f"{TOKENS_PAGE}{token.id}/revoke/"
    assert admin_client.post(revoke).status_code == 302
    assert client.get(RUNS, **bearer(secret)).status_code == 401


def test_each_token_is_rate_limited_with_retry_after(
    client, settings, monkeypatch, workspace, builder_user
):
    settings.FLOWGATE = {**settings.FLOWGATE, "RATE_LIMITS": {"api": "3/60"}}
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_015.0)  # 15 s into a window
    first = api_token_create(user=builder_user, workspace=workspace, name="one").secret
    second = api_token_create(user=builder_user, workspace=workspace, name="two").secret
    for _ in range(3):
        assert client.get(RUNS, **bearer(first)).status_code == 200
    refused = client.get(RUNS, **bearer(first))
    assert refused.status_code == 429
    # The next window counts the three as spread over this one: one more goes ahead once a
    # third of them has slid out, 20 s into it.
    assert refused["Retry-After"] == "65"
    assert refused.json()["error"]["code"] == "throttled"
    assert client.get(RUNS, **bearer(second)).status_code == 200
