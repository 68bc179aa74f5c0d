from __future__ import annotations

import pytest
from django.db import IntegrityError

from apps.accounts.models import Membership, Role
from apps.accounts.selectors import membership_list
from apps.accounts.services import membership_set
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory


def test_workspace_has_a_public_uuid_key(workspace):
    assert len(str(workspace.pk)) == 36
    assert str(workspace) == "Acme"


def test_user_is_shown_by_display_name(builder_user):
    builder_user.display_name = "Bea Builder"
    assert str(builder_user) == "Bea Builder"


def test_a_user_may_belong_to_several_workspaces_with_different_roles(
    builder_user, workspace, other_workspace
):
    membership_set(user=builder_user, workspace=other_workspace, role=Role.REVIEWER)

    roles = {m.workspace.slug: m.role for m in membership_list(user=builder_user)}

    assert roles == {"acme": Role.BUILDER, "globex": Role.REVIEWER}


def test_membership_set_replaces_the_role_in_that_workspace(builder_user, workspace):
    membership_set(user=builder_user, workspace=workspace, role=Role.ADMIN)

    assert Membership.objects.get(user=builder_user, workspace=workspace).role == Role.ADMIN
    assert Membership.objects.filter(user=builder_user).count() == 1


def test_membership_set_refuses_an_unknown_role(builder_user, workspace):
    with pytest.raises(ValueError):
        membership_set(user=builder_user, workspace=workspace, role="owner")


def test_a_user_has_at_most_one_membership_per_workspace(db):
    membership = MembershipFactory()
    with pytest.raises(IntegrityError):
        MembershipFactory(user=membership.user, workspace=membership.workspace)


def test_workspace_slugs_are_unique(db):
    WorkspaceFactory(slug="same")
    with pytest.raises(IntegrityError):
        WorkspaceFactory._meta.model.objects.create(slug="same", name="Again")


def test_persona_password_is_stored_hashed(db):
    user = UserFactory()
    assert user.password.startswith("md5$")
    assert user.check_password("correct-horse-battery-staple")
