"""The one place that says which role may do what.

Views, API views, templates and selectors ask ``can(membership, Capability.X)``; nobody
compares role names elsewhere.
"""

from __future__ import annotations

from enum import StrEnum

from .models import Membership, Role


class Capability(StrEnum):
    VIEW_FLOWS = "view_flows"
    EDIT_FLOWS = "edit_flows"
    PUBLISH_FLOWS = "publish_flows"
    VIEW_RUNS = "view_runs"
    START_RUNS = "start_runs"
    MANAGE_RUNS = "manage_runs"
    DECIDE_TASKS = "decide_tasks"
    VIEW_ALL_TASKS = "view_all_tasks"
    VIEW_MODELS = "view_models"
    MANAGE_MODELS = "manage_models"
    VIEW_POLICIES = "view_policies"
    MANAGE_POLICIES = "manage_policies"
    VIEW_AUDIT = "view_audit"
    MANAGE_SETTINGS = "manage_settings"


_BUILDER = {
    Capability.VIEW_FLOWS,
    Capability.EDIT_FLOWS,
    Capability.PUBLISH_FLOWS,
    Capability.VIEW_RUNS,
    Capability.START_RUNS,
    Capability.MANAGE_RUNS,
    Capability.VIEW_MODELS,
    Capability.VIEW_POLICIES,
}
_REVIEWER = {
    Capability.VIEW_FLOWS,
    Capability.VIEW_RUNS,
    Capability.DECIDE_TASKS,
    Capability.VIEW_MODELS,
    Capability.VIEW_POLICIES,
}

ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.BUILDER: frozenset(_BUILDER),
    Role.REVIEWER: frozenset(_REVIEWER),
    Role.ADMIN: frozenset(Capability),
}


def can(membership: Membership | None, capability: Capability) -> bool:
    if membership is None:
        return False
    return capability in ROLE_CAPABILITIES.get(membership.role, frozenset())


def may_publish(membership: Membership | None) -> bool:
    """Publish and roll back flows directly; in a workspace that requires approval only
    admins may, and builders request it instead (``may_request_publish``)."""
    if not can(membership, Capability.PUBLISH_FLOWS):
        return False
    assert membership is not None
    return membership.role == Role.ADMIN or not membership.workspace.publish_requires_approval


def may_request_publish(membership: Membership | None) -> bool:
    """Builders may ask an admin to publish: where the workspace requires it, and where
    the publishing policy wants an admin (e.g. a call outside the allow-list)."""
    return can(membership, Capability.EDIT_FLOWS) and membership.role != Role.ADMIN  # type: ignore[union-attr]
