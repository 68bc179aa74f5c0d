"""Review tasks driven through the engine inline: decisions, four eyes, requester
exclusion, concurrency, due times."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.inbox.models import ReviewApproval, ReviewTask
from apps.inbox.services import TaskError, task_claim, task_decide
from apps.runs import reconciler
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from tests.factories import MembershipFactory, UserFactory
from tests.inbox.helpers import membership, start_waiting_run, task_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def decide(task, user, workspace, decision="approve", comment="", **kwargs):
    return task_decide(
        task=task,
        actor=user,
        membership=membership(user, workspace),
        decision=decision,
        comment=comment,
        **kwargs,
    )


def finish(run):
    advance(run.id)
    run.refresh_from_db()
    return run


def test_the_approval_step_creates_a_task_and_parks_the_run(workspace, builder_user):
    run = start_waiting_run(workspace, builder_user)
    assert run.status == "waiting"
    task = task_of(run)
    assert task.title == "Claim C-17"
    assert task.description == "Check the amount of <b>Wile E.</b>."
    assert task.data == {"Amount": 1250, "Customer": "<b>Wile E.</b>"}
    assert task.priority == 12
    assert task.assignee_role == "reviewer"
    assert task.requested_by == builder_user
    step = StepRun.objects.get(run=run, node_id="review")
    assert (step.status, step.wait_kind, step.wait_reference) == (
        "waiting",
        "approval",
        str(task.id),
    )


def test_an_approval_resumes_the_run_down_the_approved_port(workspace, builder_user, reviewer_user):
    run = start_waiting_run(workspace, builder_user)
    task = decide(task_of(run), reviewer_user, workspace, comment="Looks right")
    assert (task.status, task.decided_by, task.comment) == (
        "approved",
        reviewer_user,
        "Looks right",
    )
    run = finish(run)
    assert run.status == "succeeded"
    assert run.output == {"paid": True, "by": "rui"}
    review = StepRun.objects.get(run=run, node_id="review", status="succeeded")
    assert review.port == "approved"
    assert review.output["decision"] == "approve"
    assert review.output["comment"] == "Looks right"
    decision = AuditEvent.objects.get(action="decision.human")
    assert decision.actor_label == "rui"
    assert decision.data["port"] == "approved"
    assert decision.data["meta"]["comment"] == "Looks right"
    assert AuditEvent.objects.get(action="task.decided").actor == reviewer_user


def test_a_rejection_needs_a_comment_and_takes_the_rejected_port(
    workspace, builder_user, reviewer_user
):
    run = start_waiting_run(workspace, builder_user)
    with pytest.raises(TaskError) as refused:
        decide(task_of(run), reviewer_user, workspace, "reject")
    assert refused.value.code == "invalid"
    assert task_of(run).status == "open"
    decide(task_of(run), reviewer_user, workspace, "reject", comment="Duplicate claim")
    run = finish(run)
    assert run.output == {"paid": False}


def test_a_change_request_takes_the_changes_requested_port(workspace, builder_user, admin_user):
    run = start_waiting_run(workspace, builder_user)
    decide(task_of(run), admin_user, workspace, "request_changes", comment="Attach the receipt")
    assert finish(run).output == {"rework": True}


def test_a_decision_on_a_decided_task_is_refused_and_changes_nothing(
    workspace, builder_user, reviewer_user, admin_user
):
    run = start_waiting_run(workspace, builder_user)
    decide(task_of(run), reviewer_user, workspace)
    with pytest.raises(TaskError, match="already approved") as refused:
        decide(task_of(run), admin_user, workspace, "reject", comment="no")
    assert refused.value.status == 409
    task = task_of(run)
    assert (task.status, task.decided_by) == ("approved", reviewer_user)


def test_the_requester_cannot_decide_their_own_case(workspace, admin_user):
    run = start_waiting_run(workspace, admin_user)
    with pytest.raises(TaskError, match="You requested this case") as refused:
        decide(task_of(run), admin_user, workspace)
    assert refused.value.status == 403


def test_a_builder_cannot_decide(workspace, admin_user, builder_user):
    run = start_waiting_run(workspace, admin_user)
    with pytest.raises(TaskError) as refused:
        decide(task_of(run), builder_user, workspace)
    assert refused.value.code == "forbidden"


def test_a_task_for_named_users_refuses_other_reviewers(workspace, builder_user, reviewer_user):
    carla = MembershipFactory(
        user=UserFactory(username="carla"), workspace=workspace, role="reviewer"
    ).user
    run = start_waiting_run(workspace, builder_user, assignees={"role": None, "users": ["carla"]})
    with pytest.raises(TaskError, match="not assigned to you"):
        decide(task_of(run), reviewer_user, workspace)
    decide(task_of(run), carla, workspace)
    assert finish(run).status == "succeeded"


def test_four_eyes_needs_two_distinct_reviewers(workspace, builder_user, reviewer_user):
    second = MembershipFactory(
        user=UserFactory(username="sam"), workspace=workspace, role="reviewer"
    ).user
    run = start_waiting_run(workspace, builder_user, required_approvals=2)
    decide(task_of(run), reviewer_user, workspace)
    assert task_of(run).status == "open"
    assert finish(run).status == "waiting"
    with pytest.raises(TaskError, match="already approved"):
        decide(task_of(run), reviewer_user, workspace)
    decide(task_of(run), second, workspace)
    run = finish(run)
    assert run.status == "succeeded"
    review = StepRun.objects.get(run=run, node_id="review", status="succeeded")
    assert [a["reviewer"] for a in review.output["approvals"]] == ["rui", "sam"]


def test_a_task_claimed_by_someone_else_cannot_be_decided(
    workspace, builder_user, reviewer_user, admin_user
):
    run = start_waiting_run(workspace, builder_user)
    task_claim(
        task=task_of(run), actor=reviewer_user, membership=membership(reviewer_user, workspace)
    )
    with pytest.raises(TaskError, match="has claimed this task"):
        decide(task_of(run), admin_user, workspace)


def test_a_stale_version_is_refused(workspace, builder_user, reviewer_user):
    run = start_waiting_run(workspace, builder_user)
    seen = task_of(run).version
    task_claim(
        task=task_of(run), actor=reviewer_user, membership=membership(reviewer_user, workspace)
    )
    with pytest.raises(TaskError, match="changed since you opened it"):
        decide(task_of(run), reviewer_user, workspace, expected_version=seen)


def test_two_simultaneous_decisions_have_exactly_one_winner(
    workspace, builder_user, reviewer_user, admin_user
):
    run = start_waiting_run(workspace, builder_user)
    task = task_of(run)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(user, decision):
        try:
            barrier.wait(timeout=10)
            decide(task, user, workspace, decision, comment="at once")
            outcomes[user.username] = "won"
        except TaskError as error:
            outcomes[user.username] = error.message
        finally:
            connection.close()

    threads = [
        threading.Thread(target=attempt, args=(reviewer_user, "approve")),
        threading.Thread(target=attempt, args=(admin_user, "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values())[-1] == "won"
    assert list(outcomes.values()).count("won") == 1
    loser = next(message for message in outcomes.values() if message != "won")
    assert loser.startswith("This task was already")
    assert StepRun.objects.filter(run=run, node_id="review", status="resuming").count() == 1
    assert AuditEvent.objects.filter(action="task.decided").count() == 1


def _pass_due_time(run):
    past = timezone.now() - timedelta(seconds=1)
    StepRun.objects.filter(run=run, node_id="review", status="waiting").update(wait_deadline=past)
    assert reconciler.reconcile()["expired_waits"] == 1
    return finish(run)


def test_a_task_past_its_due_time_expires_and_takes_the_expired_port(
    workspace, builder_user, reviewer_user
):
    run = start_waiting_run(workspace, builder_user, due_in_hours=1)
    step = StepRun.objects.get(run=run, node_id="review")
    assert step.wait_deadline == task_of(run).due_at
    run = _pass_due_time(run)
    assert run.output == {"late": True}
    assert task_of(run).status == "expired"
    with pytest.raises(TaskError, match="already expired"):
        decide(task_of(run), reviewer_user, workspace)
    assert AuditEvent.objects.filter(action="task.timed_out").count() == 1


def test_a_task_past_its_due_time_escalates_once_then_expires(
    workspace, builder_user, reviewer_user, admin_user
):
    run = start_waiting_run(
        workspace,
        builder_user,
        due_in_hours=1,
        on_timeout="escalate",
        escalate_to={"role": "admin", "due_in_hours": 2},
    )
    run = _pass_due_time(run)
    assert run.status == "waiting"
    task = task_of(run)
    assert (task.status, task.assignee_role) == ("escalated", "admin")
    step = StepRun.objects.filter(run=run, node_id="review").order_by("-attempt").first()
    assert step.status == "waiting" and step.wait_deadline == task.due_at
    with pytest.raises(TaskError, match="not assigned to you"):
        decide(task, reviewer_user, workspace)
    decide(task, admin_user, workspace)
    assert finish(run).output == {"paid": True, "by": "ada"}


def test_a_timeout_can_decide_automatically(workspace, builder_user):
    run = start_waiting_run(workspace, builder_user, due_in_hours=1, on_timeout="reject")
    run = _pass_due_time(run)
    assert run.output == {"paid": False}
    assert task_of(run).status == "rejected"


def test_a_re_executed_step_reuses_its_task(workspace, builder_user):
    run = start_waiting_run(workspace, builder_user)
    from apps.inbox.services import ApprovalService

    task = task_of(run)
    again = ApprovalService(workspace.id).create(
        run_id=run.id,
        node_id="review",
        title="x",
        description="",
        data={},
        form=[],
        assignee_role="reviewer",
        assignee_users=[],
        required_approvals=1,
        priority=0,
        due_at=None,
        on_timeout="expire",
        escalation=None,
    )
    assert again == str(task.id)
    assert ReviewTask.objects.count() == 1
    assert ReviewApproval.objects.count() == 0


def test_the_reconciler_expires_a_task_and_a_real_worker_finishes_the_run(
    workspace, builder_user, celery_worker
):
    run = start_waiting_run(workspace, builder_user, due_in_hours=1)
    past = timezone.now() - timedelta(seconds=1)
    StepRun.objects.filter(run=run, node_id="review", status="waiting").update(wait_deadline=past)
    assert reconciler.reconcile()["expired_waits"] == 1
    run = wait_for(lambda: Run.objects.filter(pk=run.pk, status="succeeded").first())
    assert run.output == {"late": True}
    assert task_of(run).status == "expired"


def test_a_task_of_a_cancelled_run_cannot_be_decided_and_leaves_the_queue(
    workspace, builder_user, reviewer_user
):
    from apps.inbox.selectors import TaskFilters, task_list
    from apps.runs.services import run_cancel

    run = start_waiting_run(workspace, builder_user)
    run_cancel(run=run, actor=builder_user)
    with pytest.raises(TaskError, match="The run is cancelled"):
        decide(task_of(run), reviewer_user, workspace)
    queue = task_list(
        user=reviewer_user, membership=membership(reviewer_user, workspace), filters=TaskFilters()
    )
    assert not queue.exists()
