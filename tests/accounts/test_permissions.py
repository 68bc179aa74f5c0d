from __future__ import annotations

import pytest

from apps.accounts.models import Membership, Role
from apps.accounts.permissions import ROLE_CAPABILITIES, Capability, can

BUILDER = {
    Capability.VIEW_FLOWS,
    Capability.EDIT_FLOWS,
    Capability.PUBLISH_FLOWS,
    Capability.VIEW_RUNS,
    Capability.START_RUNS,
    Capability.MANAGE_RUNS,
    Capability.VIEW_MODELS,
    Capability.VIEW_POLICIES,
}
REVIEWER = {
    Capability.VIEW_FLOWS,
    Capability.VIEW_RUNS,
    Capability.DECIDE_TASKS,
    Capability.VIEW_MODELS,
    Capability.VIEW_POLICIES,
}


def test_every_role_has_a_capability_set():
    assert set(ROLE_CAPABILITIES) == set(Role)


def test_builder_builds_and_runs_flows_but_manages_nothing_else():
    assert ROLE_CAPABILITIES[Role.BUILDER] == BUILDER


def test_reviewer_decides_tasks_and_only_reads_the_rest():
    assert ROLE_CAPABILITIES[Role.REVIEWER] == REVIEWER


def test_admin_may_do_everything():
    assert ROLE_CAPABILITIES[Role.ADMIN] == set(Capability)


@pytest.mark.parametrize(
    "capability",
    [
        Capability.MANAGE_MODELS,
        Capability.MANAGE_POLICIES,
        Capability.MANAGE_SETTINGS,
        Capability.VIEW_AUDIT,
    ],
)
def test_only_admins_manage_models_policies_settings_and_read_the_audit(capability):
    holders = {
        role for role, capabilities in ROLE_CAPABILITIES.items() if capability in capabilities
    }
    assert holders == {Role.ADMIN}


def test_only_reviewers_and_admins_decide_tasks():
    holders = {
        role
        for role, capabilities in ROLE_CAPABILITIES.items()
        if Capability.DECIDE_TASKS in capabilities
    }
    assert holders == {Role.REVIEWER, Role.ADMIN}


def test_no_membership_means_no_capability():
    assert not any(can(None, capability) for capability in Capability)


def test_can_follows_the_membership_role():
    reviewer = Membership(role=Role.REVIEWER)
    assert can(reviewer, Capability.DECIDE_TASKS)
    assert not can(reviewer, Capability.EDIT_FLOWS)


def test_an_unknown_role_has_no_capability():
    assert not can(Membership(role="owner"), Capability.VIEW_FLOWS)
