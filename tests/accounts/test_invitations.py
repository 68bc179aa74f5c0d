"""Invitations: sent through the workspace's SMTP connection (a real one on loopback) or
shown to copy; accepted once; bad links explain themselves and create nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.utils import timezone

from apps.accounts.invitations import invitation_create, invitation_resend, invitation_revoke
from apps.accounts.models import Invitation, Membership, User
from apps.audit.models import AuditEvent
from tests.factories import PERSONA_PASSWORD
from tests.support.smtp import notifications_connection, smtp_server

NEW_PASSWORD = "a-long-and-unusual-passphrase-42"


def _path(link: str) -> str:
    return urlsplit(link).path


def _accept(client, link: str, username: str = "nina"):
    return client.post(
        _path(link), {"username": username, "password": NEW_PASSWORD, "display_name": "Nina N"}
    )


def test_without_an_smtp_connection_the_link_is_shown_and_accepting_creates_the_account(
    client, workspace, admin_user
):
    sent = invitation_create(
        workspace=workspace, actor=admin_user, email="Nina@Example.com", role="reviewer"
    )
    assert not sent.emailed and "/accounts/invitations/" in sent.link

    page = client.get(_path(sent.link))
    assert b"Join Acme" in page.content

    response = _accept(client, sent.link)

    assert response.status_code == 302 and response["Location"] == "/w/acme/"
    nina = User.objects.get(username="nina")
    assert nina.email == "nina@example.com" and nina.check_password(NEW_PASSWORD)
    assert Membership.objects.get(user=nina, workspace=workspace).role == "reviewer"
    assert client.get("/w/acme/inbox/").status_code == 200  # logged in
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"invitation.sent", "invitation.accepted"} <= actions


@pytest.mark.django_db(transaction=True)
def test_with_an_smtp_connection_the_link_is_emailed(workspace, admin_user):
    with smtp_server() as (controller, mailbox):
        notifications_connection(workspace, admin_user, controller.port)
        sent = invitation_create(
            workspace=workspace, actor=admin_user, email="nina@example.com", role="builder"
        )

    assert sent.emailed
    [(sender, recipients, message)] = mailbox.messages
    assert sender == "team@acme.test"
    assert recipients == ["nina@example.com"]
    assert message["Subject"] == "You are invited to Acme on Flowgate"
    assert sent.link in message.get_content()
    assert Invitation.objects.get().sent_at is not None


def test_a_link_works_once(client, workspace, admin_user):
    sent = invitation_create(workspace=workspace, actor=admin_user, email="n@x.io", role="builder")
    _accept(client, sent.link)
    client.logout()

    again = _accept(client, sent.link, username="nina2")

    assert again.status_code == 410
    assert b"already been used" in again.content
    assert not User.objects.filter(username="nina2").exists()


def test_an_expired_link_creates_nothing(client, workspace, admin_user):
    sent = invitation_create(workspace=workspace, actor=admin_user, email="n@x.io", role="builder")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    response = _accept(client, sent.link)

    assert response.status_code == 410 and b"has expired" in response.content
    assert not User.objects.filter(username="nina").exists()


def test_a_forged_link_creates_nothing(client, workspace, admin_user):
    sent = invitation_create(workspace=workspace, actor=admin_user, email="n@x.io", role="admin")
    invitation = Invitation.objects.get()
    forged = signing.dumps({"i": str(invitation.id), "n": invitation.nonce}, key="not-the-key")
    tampered = re.sub(r"/invitations/[^/]+/", f"/invitations/{forged}/", _path(sent.link))

    for link in (tampered, "/accounts/invitations/garbage/"):
        response = _accept(client, link)
        assert response.status_code == 410 and b"not valid" in response.content
    assert not User.objects.filter(username="nina").exists()


def test_resending_replaces_the_link_and_revoking_ends_it(client, workspace, admin_user):
    first = invitation_create(workspace=workspace, actor=admin_user, email="n@x.io", role="builder")
    second = invitation_resend(invitation=first.invitation, actor=admin_user)

    assert b"newer link" in client.get(_path(first.link)).content
    invitation_revoke(invitation=second.invitation, actor=admin_user)
    response = _accept(client, second.link)

    assert response.status_code == 410 and b"withdrawn" in response.content
    assert not User.objects.filter(username="nina").exists()


def test_inviting_a_member_is_a_message_and_inviting_twice_resends(
    admin_client, workspace, admin_user, builder_user
):
    response = admin_client.post(
        "/w/acme/settings/members/invite/", {"email": "BEA@example.com", "role": "admin"}
    )
    assert response.status_code == 409
    assert b"already a member of Acme" in response.content
    assert not Invitation.objects.exists()

    for role in ("builder", "reviewer"):
        admin_client.post("/w/acme/settings/members/invite/", {"email": "n@x.io", "role": role})
    assert list(Invitation.objects.values_list("email", "role")) == [("n@x.io", "reviewer")]


def test_an_existing_account_logs_in_to_accept(client, workspace, other_workspace, admin_user):
    from tests.factories import UserFactory

    UserFactory(username="otto", email="otto@example.com")
    sent = invitation_create(
        workspace=workspace, actor=admin_user, email="otto@example.com", role="builder"
    )
    assert b"Log in to accept" in client.get(_path(sent.link)).content
    assert _accept(client, sent.link, username="otto2").status_code == 409

    client.post("/accounts/login/", {"username": "otto", "password": PERSONA_PASSWORD})
    response = client.post(_path(sent.link))

    assert response.status_code == 302
    assert Membership.objects.filter(user__username="otto", workspace=workspace).exists()


def test_a_weak_password_is_refused_and_nothing_is_created(client, workspace, admin_user):
    sent = invitation_create(workspace=workspace, actor=admin_user, email="n@x.io", role="builder")

    response = client.post(_path(sent.link), {"username": "nina", "password": "123"})

    assert response.status_code == 400 and b"too short" in response.content
    assert not User.objects.filter(username="nina").exists()
    assert Invitation.objects.get().accepted_at is None


def test_only_admins_invite(builder_client, workspace):
    response = builder_client.post("/w/acme/settings/members/invite/", {"email": "n@x.io"})
    assert response.status_code == 403
