"""Single sign-on with OpenID Connect (mozilla-django-oidc), configured by environment.

The first log-in links the account with the same email address, or creates one. With
``OIDC_GROUP_ROLES`` (``idp-group=workspace-slug:role``, comma-separated), the groups the
provider sends in ``OIDC_GROUPS_CLAIM`` set the user's role in those workspaces at every
log-in. Any failure (wrong issuer, a state that does not match, no email claim, a provider
that refuses) ends on the log-in page with a readable message and creates nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from apps.audit.services import audit_record

from .models import Membership, Role, User, Workspace

logger = logging.getLogger(__name__)

RANK = {Role.REVIEWER: 0, Role.BUILDER: 1, Role.ADMIN: 2}


class SignInRefused(Exception):
    """Single sign-on cannot log this person in; the message is shown to them."""


def group_roles(groups: list[str]) -> dict[str, str]:
    """workspace slug → role from ``OIDC_GROUP_ROLES`` for the user's IdP ``groups``; the
    highest role wins where several groups name one workspace."""
    roles: dict[str, str] = {}
    for rule in settings.OIDC_GROUP_ROLES:
        match = re.fullmatch(r"\s*([^=]+?)\s*=\s*([\w-]+)\s*:\s*(\w+)\s*", rule)
        if match is None or match.group(3) not in Role.values:
            logger.warning("ignoring OIDC_GROUP_ROLES rule %r (want group=workspace:role)", rule)
            continue
        group, slug, role = match.groups()
        if group in groups and RANK[Role(role)] >= RANK.get(Role(roles.get(slug, role)), -1):
            roles[slug] = role
    return roles


class FlowgateOIDCBackend(OIDCAuthenticationBackend):
    def verify_token(self, token: str, **kwargs: Any) -> Any:
        payload = super().verify_token(token, **kwargs)
        issuer = settings.OIDC_OP_ISSUER
        if issuer and (payload or {}).get("iss") != issuer:
            raise SignInRefused(
                f"the identity provider identified itself as {payload.get('iss')!r}, "
                f"not the configured issuer {issuer!r}"
            )
        return payload

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not str(claims.get("email") or "").strip():
            raise SignInRefused(
                "the identity provider sent no email address, so no account can be matched; "
                "ask your administrator to release the email claim to Flowgate"
            )
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return User.objects.filter(email__iexact=claims["email"].strip())

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> User:
        email = claims["email"].strip().lower()
        user = User(
            username=_free_username(claims.get("preferred_username") or email.split("@")[0]),
            email=email,
            display_name=str(claims.get("name") or "")[:150],
        )
        user.set_unusable_password()  # they sign in through the provider only
        user.save()
        _apply_group_roles(user, claims)
        return user

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        _apply_group_roles(user, claims)
        return user


def _free_username(wanted: str) -> str:
    base = re.sub(r"[^\w.@+-]", "", wanted)[:140] or "user"
    name, counter = base, 2
    while User.objects.filter(username__iexact=name).exists():
        name, counter = f"{base}{counter}", counter + 1
    return name


def _apply_group_roles(user: User, claims: dict[str, Any]) -> None:
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    for slug, role in group_roles([str(group) for group in groups]).items():
        workspace = Workspace.objects.filter(slug=slug, archived_at__isnull=True).first()
        if workspace is None:
            continue
        membership = Membership.objects.filter(user=user, workspace=workspace).first()
        before = membership.role if membership else None
        if before == role:
            continue
        Membership.objects.update_or_create(user=user, workspace=workspace, defaults={"role": role})
        audit_record(
            workspace_id=workspace.id,
            action="membership.sso_role_set",
            actor=user,
            object_type="membership",
            object_id=user.id,
            summary=f"single sign-on set {user}'s role from {before or 'none'} to {role}",
            data={"user": user.username, "before": before, "after": role, "groups": groups},
        )


def _failed(request: HttpRequest, reason: str) -> HttpResponse:
    messages.error(request, f"Single sign-on did not log you in: {reason}.")
    return redirect("accounts:login")


class SignInStart(OIDCAuthenticationRequestView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return super().get(request)


class SignInCallback(OIDCAuthenticationCallbackView):
    """The provider's redirect back; every way it can fail reads as a sentence."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except SignInRefused as refused:
            return _failed(request, str(refused))
        except SuspiciousOperation as suspicious:
            logger.warning("OIDC callback refused: %s", suspicious)
            return _failed(
                request,
                "the answer could not be verified (it was not for this browser's sign-in, "
                "or was used already); start again",
            )
        except requests.RequestException as error:
            logger.warning("OIDC provider error: %s", error)
            return _failed(request, "the identity provider refused or could not be reached")

    def login_failure(self) -> HttpResponse:
        request = self.request
        reason = request.GET.get("error_description") or request.GET.get("error")
        if not reason and "oidc_states" not in request.session:
            reason = "this sign-in was not started from this browser; start again"
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            reason = "your account is deactivated"
        return _failed(request, reason or "the provider did not confirm who you are")
