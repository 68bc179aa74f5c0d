"""Writes an admin makes to a team: workspaces, members' roles, removal, deactivation.

Every change is audited in the workspace it concerns (who, what, before → after). A
workspace always keeps an active admin: the last one can neither leave, be demoted nor be
deactivated. Changes that touch admins lock the workspace's admin rows first, so two
admins acting at once are serialised and one of them sees the other's result.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.audit.services import audit_record

from .models import ApiToken, Membership, Role, User, Workspace


class TeamError(Exception):
    """An admin action was refused; ``code`` is invalid, conflict, last_admin or exists."""

    STATUS = {"invalid": 400, "forbidden": 403, "conflict": 409, "last_admin": 409, "exists": 409}

    def __init__(self, message: str, *, code: str = "invalid", current: Any = None):
        super().__init__(message)
        self.message, self.code, self.current = message, code, current

    @property
    def status(self) -> int:
        return self.STATUS.get(self.code, 400)


def _audit(workspace: Workspace, actor: Any, action: str, summary: str, **data: Any) -> None:
    audit_record(
        workspace_id=workspace.id,
        action=action,
        actor=actor,
        object_type=action.split(".")[0],
        object_id=data.pop("object_id", workspace.id),
        summary=summary,
        data=data,
    )


# --- workspaces ------------------------------------------------------------------------
def _workspace_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise TeamError("a workspace needs a name")
    if len(name) > 120:  # Workspace.name's max_length
        raise TeamError("a workspace name has at most 120 characters")
    return name


@transaction.atomic
def workspace_open(*, name: str, actor: User | None, slug: str = "") -> Workspace:
    """Create a workspace; ``actor`` (if any) becomes its first admin."""
    name = _workspace_name(name)
    slug = slugify(slug or name)[:60]
    if not slug:
        raise TeamError("the workspace's address needs letters or digits")
    try:
        with transaction.atomic():
            workspace = Workspace.objects.create(slug=slug, name=name)
    except IntegrityError:
        raise TeamError(f"the address {slug!r} is taken: choose another", code="exists") from None
    if actor is not None:
        Membership.objects.create(user=actor, workspace=workspace, role=Role.ADMIN)
    _audit(workspace, actor, "workspace.created", f"created workspace {name}", name=name, slug=slug)
    return workspace


@transaction.atomic
def workspace_rename(*, workspace: Workspace, actor: Any, name: str) -> Workspace:
    name, before = _workspace_name(name), workspace.name
    if name != before:
        workspace.name = name
        workspace.save(update_fields=["name"])
        _audit(
            workspace, actor, "workspace.renamed", f"renamed {before} to {name}",
            before=before, after=name,
        )  # fmt: skip
    return workspace


@transaction.atomic
def workspace_archive(*, workspace: Workspace, actor: Any, archived: bool = True) -> Workspace:
    """Archive (or restore) a workspace: its data stays, its members stop seeing it."""
    if (workspace.archived_at is not None) != archived:
        workspace.archived_at = timezone.now() if archived else None
        workspace.save(update_fields=["archived_at"])
        verb = "archived" if archived else "restored"
        _audit(workspace, actor, f"workspace.{verb}", f"{verb} workspace {workspace.name}")
    return workspace


@transaction.atomic
def workspace_set_publish_approval(*, workspace: Workspace, actor: Any, required: bool) -> None:
    """Whether builders must ask an admin to publish (publish requests) or may publish."""
    before = workspace.publish_requires_approval
    if before != required:
        workspace.publish_requires_approval = required
        workspace.save(update_fields=["publish_requires_approval"])
        _audit(
            workspace, actor, "workspace.publish_rule_changed",
            "publishing now needs an admin's approval" if required
            else "builders may publish without approval",
            before=before, after=required,
        )  # fmt: skip


# --- members ---------------------------------------------------------------------------
def _lock_admins(workspace: Workspace) -> list[Membership]:
    return list(
        Membership.objects.select_for_update()
        .filter(workspace=workspace, role=Role.ADMIN, user__is_active=True)
        .order_by("pk")
    )


def _lock_member(workspace: Workspace, user_id: Any) -> Membership:
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(workspace=workspace, user_id=user_id)
        .first()
    )
    if membership is None:
        raise TeamError("they are no longer a member of this workspace", code="conflict")
    return membership


def _keep_an_admin(membership: Membership, admins: list[Membership], doing: str) -> None:
    others = [admin for admin in admins if admin.pk != membership.pk]
    if membership.role == Role.ADMIN and membership.user.is_active and not others:
        raise TeamError(
            f"{membership.user} is the workspace's last admin and cannot be {doing}: "
            "make someone else an admin first",
            code="last_admin",
        )


def membership_change_role(
    *, workspace: Workspace, actor: Any, user_id: Any, role: str, expected_role: str = ""
) -> Membership:
    """Set a member's role. ``expected_role`` is the role the admin saw: when another admin
    changed it since, nothing changes and the error carries the current membership."""
    if role not in Role.values:
        raise TeamError(f"unknown role {role!r}: choose builder, reviewer or admin")
    with transaction.atomic():
        admins = _lock_admins(workspace)
        membership = _lock_member(workspace, user_id)
        before = membership.role
        if expected_role and before != expected_role:
            raise TeamError(
                f"another admin changed {membership.user}'s role to {before} meanwhile; "
                "nothing was changed",
                code="conflict",
                current=membership,
            )
        if before == role:
            return membership
        if role != Role.ADMIN:
            _keep_an_admin(membership, admins, "demoted")
        membership.role = role
        membership.save(update_fields=["role"])
        _audit(
            workspace, actor, "membership.role_changed",
            f"changed {membership.user}'s role from {before} to {role}",
            object_id=membership.user_id, user=membership.user.username, before=before, after=role,
        )  # fmt: skip
    return membership


def membership_remove(*, workspace: Workspace, actor: Any, user_id: Any) -> None:
    """Take a member out of the workspace; their tokens for it stop working."""
    with transaction.atomic():
        admins = _lock_admins(workspace)
        membership = _lock_member(workspace, user_id)
        _keep_an_admin(membership, admins, "removed")
        user, role = membership.user, membership.role
        membership.delete()
        revoked = api_tokens_revoke_all(user=user, workspace=workspace)
        _audit(
            workspace, actor, "membership.removed", f"removed {user} ({role}) from the workspace",
            object_id=user.id, user=user.username, before=role, after=None, tokens_revoked=revoked,
        )  # fmt: skip


def user_set_active(*, workspace: Workspace, actor: Any, user_id: Any, active: bool) -> User:
    """Deactivate (or reactivate) a member's account. Deactivating ends their sessions and
    revokes every API token they hold at once. An admin may only deactivate someone whose
    every workspace they administer: one workspace cannot lock a person out of another."""
    with transaction.atomic():
        admins = _lock_admins(workspace)
        membership = _lock_member(workspace, user_id)
        user = User.objects.select_for_update().get(pk=membership.user_id)
        if user.is_active == active:
            return user
        if not active:
            _may_deactivate(actor, user, membership, admins)
        user.is_active = active
        user.save(update_fields=["is_active"])
        revoked = 0 if active else api_tokens_revoke_all(user=user)
        ended = 0 if active else sessions_end(user=user)
        verb = "reactivated" if active else "deactivated"
        _audit(
            workspace, actor, f"user.{verb}", f"{verb} {user}'s account",
            object_id=user.id, user=user.username,
            before="inactive" if active else "active", after="active" if active else "inactive",
            tokens_revoked=revoked, sessions_ended=ended,
        )  # fmt: skip
    return user


def _may_deactivate(actor: Any, user: User, membership: Membership, admins: list[Any]) -> None:
    if actor is not None and user.pk == actor.pk:
        raise TeamError("you cannot deactivate your own account", code="forbidden")
    _keep_an_admin(membership, admins, "deactivated")
    administered = Membership.objects.filter(user=actor, role=Role.ADMIN).values("workspace_id")
    elsewhere = (
        Membership.objects.filter(user=user)
        .exclude(workspace_id__in=administered)
        .select_related("workspace")
        .first()
    )
    if elsewhere is not None:
        raise TeamError(
            f"{user} also belongs to {elsewhere.workspace.name}, where you are not an admin: "
            "remove them from this workspace instead",
            code="forbidden",
        )


def api_tokens_revoke_all(*, user: User, workspace: Workspace | None = None) -> int:
    """Mark every live API token of ``user`` (in ``workspace``, or anywhere) revoked."""
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if workspace is not None:
        tokens = tokens.filter(workspace=workspace)
    return tokens.update(revoked_at=timezone.now())


def sessions_end(*, user: User) -> int:
    """Delete every live session of ``user``: their open browsers are logged out now."""
    user_id, ended = str(user.pk), []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == user_id:
            ended.append(session.pk)
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)
