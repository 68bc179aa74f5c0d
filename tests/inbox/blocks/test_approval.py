"""The human.approval block against a fake approvals service: config in, task and wait out."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from apps.blocks.base import BlockError, Wait
from apps.inbox.blocks import HumanApprovalBlock, HumanApprovalConfig
from tests.blocks.fakes import FakeContext


class FakeApprovals:
    def __init__(self, timeout_answer: dict[str, Any] | None = None):
        self.created: list[dict[str, Any]] = []
        self.timeout_answer = timeout_answer or {}

    def create(self, **task: Any) -> str:
        self.created.append(task)
        return "task-1"

    def timeout(self, task_id: str) -> dict[str, Any]:
        return self.timeout_answer


SCOPE = {"trigger": {"body": {"id": "E-1", "amount": 900, "who": "Bea"}}, "steps": {}}


def run_block(approvals: FakeApprovals, **config: Any):
    ctx = FakeContext(scope=SCOPE, services={"approvals": approvals})
    block_config = HumanApprovalConfig(**{"title": "Expense {{ trigger.body.id }}", **config})
    return ctx, block_config, HumanApprovalBlock().execute(ctx, block_config, {"x": 1})


def test_execute_creates_the_task_from_the_run_data_and_waits():
    approvals = FakeApprovals()
    _, _, result = run_block(
        approvals,
        fields={"Amount": "trigger.body.amount", "Who": "trigger.body.who"},
        priority="trigger.body.amount / 10",
        required_approvals=2,
        form=[{"name": "code", "type": "select", "options": ["A", "B"]}],
    )
    assert result.wait == Wait(
        kind="approval", reference="task-1", deadline=None, state={"task": "task-1"}
    )
    task = approvals.created[0]
    assert task["title"] == "Expense E-1"
    assert task["data"] == {"Amount": 900, "Who": "Bea"}
    assert (task["priority"], task["required_approvals"], task["assignee_role"]) == (
        90,
        2,
        "reviewer",
    )
    assert task["form"][0]["options"] == ["A", "B"]


def test_a_due_time_becomes_the_wait_deadline():
    approvals = FakeApprovals()
    _, _, result = run_block(approvals, due_in_hours=2)
    assert result.wait.deadline == approvals.created[0]["due_at"]
    assert result.wait.deadline is not None


def test_a_priority_that_is_not_a_number_fails_the_step():
    with pytest.raises(BlockError, match="priority must be a number"):
        run_block(FakeApprovals(), priority="trigger.body.who")


def test_resume_takes_the_decision_port_with_the_decision_as_output():
    approvals = FakeApprovals()
    ctx, config, result = run_block(approvals)
    signal = {"port": "rejected", "decision": "reject", "reviewer": "rui", "comment": "dup"}
    resumed = HumanApprovalBlock().resume(ctx, config, result.wait, signal)
    assert resumed.port == "rejected"
    assert resumed.output["comment"] == "dup" and resumed.output["task"] == "task-1"
    assert resumed.meta["reviewer"] == "rui"


def test_an_escalating_timeout_waits_again_until_the_new_due_time():
    approvals = FakeApprovals({"action": "escalated", "due_at": "2030-01-01T00:00:00+00:00"})
    ctx, config, result = run_block(
        approvals, due_in_hours=1, on_timeout="escalate", escalate_to={"role": "admin"}
    )
    resumed = HumanApprovalBlock().resume(ctx, config, result.wait, {"timeout": True})
    assert resumed.wait is not None and resumed.wait.deadline.year == 2030


@pytest.mark.parametrize(
    "config",
    [
        {"on_timeout": "escalate", "due_in_hours": 1},  # no escalate_to
        {"on_timeout": "approve"},  # no due time
        {"assignees": {"role": None, "users": []}},
        {"form": [{"name": "a"}, {"name": "a"}]},
        {"required_approvals": 0},
        {"unknown": 1},
    ],
)
def test_invalid_configs_are_refused(config):
    with pytest.raises(ValidationError):
        HumanApprovalConfig(title="t", **config)
