"""``human.approval`` assigned to a reviewer group: its members see and decide the task,
other reviewers do not; an unknown group fails the step with a message."""

from __future__ import annotations

from apps.accounts.groups import reviewer_group_create, reviewer_group_set_members
from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.inbox.selectors import TaskFilters, task_list
from apps.inbox.services import decision_refusal
from tests.factories import MembershipFactory, UserFactory
from tests.inbox.helpers import membership, start_waiting_run, task_of


def test_a_group_members_task_is_theirs_and_not_other_reviewers(
    workspace, admin_user, builder_user, reviewer_user
):
    gus = MembershipFactory(
        user=UserFactory(username="gus"), workspace=workspace, role=Role.REVIEWER
    ).user
    group = reviewer_group_create(workspace=workspace, actor=admin_user, name="Finance approvers")
    reviewer_group_set_members(group=group, actor=admin_user, usernames=["gus"])

    run = start_waiting_run(
        workspace, builder_user, assignees={"role": None, "groups": ["finance-approvers"]}
    )
    task = task_of(run)

    for_gus = task_list(user=gus, membership=membership(gus, workspace), filters=TaskFilters())
    for_rui = task_list(
        user=reviewer_user, membership=membership(reviewer_user, workspace), filters=TaskFilters()
    )
    assert list(for_gus) == [task] and list(for_rui) == []
    assert decision_refusal(task, gus, membership(gus, workspace)) is None
    refusal = decision_refusal(task, reviewer_user, membership(reviewer_user, workspace))
    assert refusal is not None and refusal.code == "forbidden"
    changed = AuditEvent.objects.get(action="reviewer_group.members_changed")
    assert changed.data == {"group": "finance-approvers", "before": [], "after": ["gus"]}


def test_an_unknown_group_fails_the_step_with_a_message(workspace, builder_user):
    run = start_waiting_run(workspace, builder_user, assignees={"role": None, "groups": ["nope"]})

    assert run.status == "failed"
    step = run.steps.get(node_id="review")
    assert "no reviewer group 'nope'" in step.error["message"]


def test_the_groups_page_creates_a_group_and_sets_its_members(
    admin_client, workspace, reviewer_user
):
    admin_client.post("/w/acme/settings/groups/", {"name": "Finance approvers"})
    page = admin_client.get("/w/acme/settings/groups/")
    assert b"finance-approvers" in page.content

    group = workspace.reviewer_groups.get()
    admin_client.post(f"/w/acme/settings/groups/{group.id}/members/", {"members": ["rui"]})
    assert list(group.members.values_list("username", flat=True)) == ["rui"]
    outsider = admin_client.post(
        f"/w/acme/settings/groups/{group.id}/members/", {"members": ["rui", "mallory"]}
    )
    assert outsider.status_code == 302
    assert list(group.members.values_list("username", flat=True)) == ["rui"]
