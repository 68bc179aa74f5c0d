"""factory_boy factories for the accounts models. Every persona logs in with
``PERSONA_PASSWORD``."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory, Password

from apps.accounts.models import Membership, Role, User, Workspace

PERSONA_PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda number: f"user{number}")
    display_name = factory.LazyAttribute(lambda user: user.username.title())
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = Password(PERSONA_PASSWORD)


class WorkspaceFactory(DjangoModelFactory):
    class Meta:
        model = Workspace
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda number: f"workspace-{number}")
    name = factory.LazyAttribute(lambda workspace: workspace.slug.replace("-", " ").title())


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.BUILDER
