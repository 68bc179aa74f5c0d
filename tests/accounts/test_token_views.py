"""Settings → API tokens: create shows the secret once, revoke stops it working."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKENS = reverse("settings:tokens", kwargs={"workspace_slug": "acme"})
RUNS_API = "/api/w/acme/runs/"


def create(client, name="CI pipeline") -> str:
    response = client.post(TOKENS, {"name": name})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    match = re.search(r'value="(fg_[^"]+)"', response.content.decode())
    assert match, "the new secret is shown once"
    return match.group(1)


def test_created_token_is_shown_once_and_authenticates(builder_client, client, workspace):
    secret = create(builder_client)
    assert secret not in builder_client.get(TOKENS).content.decode()  # never again
    listing = builder_client.get(TOKENS).content.decode()
    assert "CI pipeline" in listing and f"{secret[:10]}…" in listing
    token = ApiToken.objects.get(name="CI pipeline")
    assert token.digest != secret and secret not in str(token.__dict__)
    assert client.get(RUNS_API, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert AuditEvent.objects.filter(workspace=workspace, action="api_token.created").exists()


def test_revoked_token_gets_401(builder_client, client, workspace):
    secret = create(builder_client)
    token = ApiToken.objects.get(name="CI pipeline")
    revoke = reverse(
        "settings:token_revoke", kwargs={"workspace_slug": "acme", "token_id": token.id}
    )
    response = builder_client.post(revoke, follow=True)
    assert b"Revoked" in response.content and b"revoked" in response.content
    assert client.get(RUNS_API, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    assert AuditEvent.objects.filter(workspace=workspace, action="api_token.revoked").exists()


def test_a_name_is_required(builder_client):
    response = builder_client.post(TOKENS, {"name": ""})
    assert response.status_code == 400 and ApiToken.objects.count() == 0


def test_nobody_else_but_an_admin_sees_or_revokes_my_tokens(
    builder_client, reviewer_client, outsider_client
):
    create(builder_client, name="Bea's token")
    token = ApiToken.objects.get()
    assert "Bea&#x27;s token" not in reviewer_client.get(TOKENS).content.decode()
    revoke = reverse(
        "settings:token_revoke", kwargs={"workspace_slug": "acme", "token_id": token.id}
    )
    assert reviewer_client.post(revoke).status_code == 404
    assert outsider_client.get(TOKENS).status_code == 404
    own = reverse(
        "settings:token_revoke", kwargs={"workspace_slug": "globex", "token_id": token.id}
    )
    assert outsider_client.post(own).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None  # admins may (tests/security/test_api_tokens.py)
