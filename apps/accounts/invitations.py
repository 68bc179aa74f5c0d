"""Invitations: an admin invites an email address; the link it gets joins the workspace.

The link holds a value signed with the deployment's secret (``django.core.signing``)
naming the invitation and its current nonce. It works once, until ``expires_at``, and only
while it is the latest link sent (resending draws a new nonce). The mail goes through the
workspace's SMTP connection named ``notifications``; without one the admin is shown the
link to pass on.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.audit.services import audit_record

from .models import Invitation, Membership, Role, User, Workspace
from .team import TeamError

logger = logging.getLogger(__name__)

SALT = "flowgate.invitation"
CONNECTION = "notifications"


def _max_age() -> timedelta:
    return timedelta(days=getattr(settings, "INVITATION_MAX_AGE_DAYS", 7))


@dataclass(frozen=True)
class SentInvitation:
    invitation: Invitation
    link: str
    emailed: bool  # False: the admin must pass the link on
    problem: str = ""  # why it was not emailed, when a connection exists but failed


def invitation_link(invitation: Invitation) -> str:
    token = signing.dumps({"i": str(invitation.id), "n": invitation.nonce}, salt=SALT)
    path = reverse("accounts:invitation", kwargs={"token": token})
    return settings.SITE_URL.rstrip("/") + path


def _audit(invitation: Invitation, actor: Any, action: str, summary: str, **data: Any) -> None:
    audit_record(
        workspace_id=invitation.workspace_id,
        action=action,
        actor=actor,
        object_type="invitation",
        object_id=invitation.id,
        summary=summary,
        data={"email": invitation.email, "role": invitation.role, **data},
    )


def invitation_create(*, workspace: Workspace, actor: Any, email: str, role: str) -> SentInvitation:
    """Invite ``email`` as ``role``. A pending invitation for the address is sent again
    (with the new role); a current member is refused."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise TeamError(f"{email or 'an empty address'} is not an email address") from None
    if role not in Role.values:
        raise TeamError(f"unknown role {role!r}: choose builder, reviewer or admin")
    member = Membership.objects.filter(workspace=workspace, user__email__iexact=email).first()
    if member is not None:
        raise TeamError(
            f"{email} is already a member of {workspace.name} ({member.role})", code="exists"
        )
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(workspace=workspace, email=email, accepted_at=None, revoked_at=None)
            .first()
        )
        if invitation is None:
            invitation = Invitation(workspace=workspace, email=email, invited_by=actor)
        invitation.role = role
        _renew(invitation)
        _audit(invitation, actor, "invitation.sent", f"invited {email} as {role}")
    return _deliver(invitation)


def _renew(invitation: Invitation) -> None:
    invitation.nonce = secrets.token_urlsafe(16)
    invitation.expires_at = timezone.now() + _max_age()
    invitation.save()


def invitation_resend(*, invitation: Invitation, actor: Any) -> SentInvitation:
    """A new link (the old one stops working) with a fresh expiry."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at or invitation.revoked_at:
            raise TeamError("this invitation is no longer pending", code="conflict")
        _renew(invitation)
        _audit(invitation, actor, "invitation.resent", f"sent {invitation.email} a new link")
    return _deliver(invitation)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Any) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        _audit(invitation, actor, "invitation.revoked", f"revoked {invitation.email}'s invitation")
    return invitation


def _deliver(invitation: Invitation) -> SentInvitation:
    from apps.blocks.base import BlockError
    from apps.connectors.email import client
    from apps.connectors.services import WorkspaceConnections

    link = invitation_link(invitation)
    try:
        connection = WorkspaceConnections(invitation.workspace_id).get(CONNECTION, type="smtp")
    except BlockError:
        return SentInvitation(invitation, link, emailed=False)
    message = _message(invitation, link, sender=connection.config.from_address)
    try:
        client.send(connection.config, connection.secrets, message)
    except client.SmtpFailure as failure:
        logger.warning("invitation %s not emailed: %s", invitation.id, failure)
        return SentInvitation(invitation, link, emailed=False, problem=str(failure))
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=timezone.now())
    return SentInvitation(invitation, link, emailed=True)


def _message(invitation: Invitation, link: str, *, sender: str) -> EmailMessage:
    from apps.connectors.email.client import text_message

    inviter = invitation.invited_by or "An admin"
    return text_message(
        sender=sender,
        to=[invitation.email],
        subject=f"You are invited to {invitation.workspace.name} on Flowgate",
        body=f"{inviter} invited you to join {invitation.workspace.name} as {invitation.role}.\n\n"
        f"Accept: {link}\n\n"
        f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n",
    )


# --- accepting -------------------------------------------------------------------------
class InvitationInvalid(Exception):
    """The link cannot be used; the message says why, for the person holding it."""


def invitation_from_token(token: str, *, lock: bool = False) -> Invitation:
    try:
        value = signing.loads(token, salt=SALT)
        invitation_id, nonce = value["i"], value["n"]
    except (signing.BadSignature, KeyError, TypeError):
        raise InvitationInvalid(
            "This invitation link is not valid. Check that you copied all of it."
        ) from None
    queryset = Invitation.objects.select_related("workspace")
    invitation = (
        (queryset.select_for_update() if lock else queryset).filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.revoked_at is not None:
        raise InvitationInvalid("This invitation was withdrawn. Ask an admin for a new one.")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation has already been used. Log in instead.")
    if invitation.nonce != nonce:
        raise InvitationInvalid(
            "A newer link was sent for this invitation: use the latest email, or ask an "
            "admin to send it again."
        )
    if invitation.expires_at <= timezone.now():
        raise InvitationInvalid("This invitation has expired. Ask an admin to send it again.")
    return invitation


def account_for(invitation: Invitation) -> User | None:
    """The existing account the invited address belongs to, if any."""
    return User.objects.filter(email__iexact=invitation.email).order_by("date_joined").first()


def invitation_accept(
    *,
    token: str,
    user: User | None = None,
    username: str = "",
    password: str = "",
    display_name: str = "",
) -> Membership:
    """Join the invited workspace: as ``user`` (an existing account, logged in, whose email
    is the invited one) or as a new account made from ``username`` and ``password``."""
    with transaction.atomic():
        invitation = invitation_from_token(token, lock=True)
        if user is None:
            user = _new_account(invitation, username, password, display_name)
        elif user.email.lower() != invitation.email:
            raise TeamError(
                f"this invitation is for {invitation.email}; you are logged in as {user.email}",
                code="forbidden",
            )
        membership, _ = Membership.objects.get_or_create(
            user=user, workspace=invitation.workspace, defaults={"role": invitation.role}
        )
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        _audit(
            invitation, user, "invitation.accepted",
            f"{user} joined as {membership.role}", user=user.username, before=None,
            after=membership.role,
        )  # fmt: skip
    return membership


def _new_account(invitation: Invitation, username: str, password: str, name: str) -> User:
    username = (username or "").strip()
    problems: dict[str, str] = {}
    if not username:
        problems["username"] = "choose a username"
    elif User.objects.filter(username__iexact=username).exists():
        problems["username"] = f"{username!r} is taken: choose another"
    if account_for(invitation) is not None:
        raise TeamError(
            f"{invitation.email} already has an account: log in to accept", code="exists"
        )
    candidate = User(username=username, email=invitation.email, display_name=name.strip())
    try:
        validate_password(password, candidate)
    except ValidationError as error:
        problems["password"] = " ".join(error.messages)
    if problems:
        raise TeamError("; ".join(problems.values()), current=problems)
    candidate.set_password(password)
    candidate.save()
    return candidate
