"""The demo seed leaves one expense waiting for the demo reviewer, however often it runs."""

from __future__ import annotations

from apps.inbox.demo import seed_inbox
from apps.inbox.models import ReviewTask


def test_the_demo_seed_leaves_one_task_waiting_for_reviewers(
    workspace, admin_user, builder_user, reviewer_user
):
    users = {"admin": admin_user, "builder": builder_user, "reviewer": reviewer_user}
    seed_inbox(workspace=workspace, users=users)
    seed_inbox(workspace=workspace, users=users)
    task = ReviewTask.objects.get()
    assert task.title == "Expense EXP-1042: Hotel Adlon"
    assert (task.status, task.assignee_role, task.priority) == ("open", "reviewer", 64)
    assert task.run.status == "waiting"
