"""Reviewer groups: named sets of members a ``human.approval`` step can assign to."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.audit.services import audit_record

from .models import ReviewerGroup, Workspace
from .team import TeamError


def _audit(group: ReviewerGroup, actor: Any, action: str, summary: str, **data: Any) -> None:
    audit_record(
        workspace_id=group.workspace_id,
        action=action,
        actor=actor,
        object_type="reviewer_group",
        object_id=group.id,
        summary=summary,
        data={"group": group.slug, **data},
    )


@transaction.atomic
def reviewer_group_create(*, workspace: Workspace, actor: Any, name: str) -> ReviewerGroup:
    name = (name or "").strip()[:120]
    slug = slugify(name)[:60]
    if not slug:
        raise TeamError("a group needs a name with letters or digits")
    try:
        with transaction.atomic():
            group = ReviewerGroup.objects.create(workspace=workspace, slug=slug, name=name)
    except IntegrityError:
        raise TeamError(f"there is a group {slug!r} already", code="exists") from None
    _audit(group, actor, "reviewer_group.created", f"created reviewer group {name}")
    return group


@transaction.atomic
def reviewer_group_set_members(
    *, group: ReviewerGroup, actor: Any, usernames: list[str]
) -> ReviewerGroup:
    """Make the group's members exactly ``usernames`` (members of its workspace only)."""
    from .models import User

    users = list(
        User.objects.filter(
            username__in=usernames, memberships__workspace_id=group.workspace_id
        ).order_by("username")
    )
    unknown = sorted(set(usernames) - {user.username for user in users})
    if unknown:
        raise TeamError(f"not members of this workspace: {', '.join(unknown)}")
    before = sorted(group.members.values_list("username", flat=True))
    after = [user.username for user in users]
    if before != after:
        group.members.set(users)
        _audit(
            group, actor, "reviewer_group.members_changed",
            f"set the members of {group.name}", before=before, after=after,
        )  # fmt: skip
    return group


@transaction.atomic
def reviewer_group_delete(*, group: ReviewerGroup, actor: Any) -> None:
    _audit(group, actor, "reviewer_group.deleted", f"deleted reviewer group {group.name}")
    group.delete()
