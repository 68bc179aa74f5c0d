"""Demo workspace and users, created by ``manage.py seed_demo``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .models import Role, User, Workspace
from .services import membership_set

DEMO_WORKSPACE = ("demo", "Acme Demo")
SANDBOX_WORKSPACE = ("sandbox", "Sandbox")


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    display_name: str

    @property
    def password(self) -> str:
        return os.environ.get("DEMO_PASSWORD") or f"{self.username}-demo"


DEMO_USERS = (
    DemoUser("builder", Role.BUILDER, "Bea Builder"),
    DemoUser("reviewer", Role.REVIEWER, "Rui Reviewer"),
    DemoUser("admin", Role.ADMIN, "Ada Admin"),
    # A second admin: a model promotion one admin requests needs another to approve it.
    DemoUser("approver", Role.ADMIN, "Otto Approver"),
)


def seed_accounts() -> tuple[Workspace, dict[str, User]]:
    """Create (or refresh) the demo workspace and its demo users. Idempotent."""
    workspace, _ = Workspace.objects.get_or_create(
        slug=DEMO_WORKSPACE[0], defaults={"name": DEMO_WORKSPACE[1]}
    )
    sandbox, _ = Workspace.objects.get_or_create(
        slug=SANDBOX_WORKSPACE[0], defaults={"name": SANDBOX_WORKSPACE[1]}
    )
    users = {}
    for demo in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=demo.username,
            defaults={"display_name": demo.display_name, "email": f"{demo.username}@example.com"},
        )
        if created or not user.check_password(demo.password):
            user.set_password(demo.password)
            user.save()
        membership_set(user=user, workspace=workspace, role=demo.role)
        users[demo.username] = user
    membership_set(user=users["admin"], workspace=sandbox, role=Role.ADMIN)
    return workspace, users
