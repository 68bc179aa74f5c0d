"""The ``human.approval`` block: hand a case to people and wait for their decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result, Wait
from apps.blocks.expressions import Expression, Template

PORTS = ("approved", "rejected", "changes_requested", "expired")
MAX_DUE_HOURS = 90 * 24


class Assignees(BaseModel):
    """Who may decide: everyone with ``role``, the named ``users`` (usernames) and the
    members of the reviewer ``groups`` (their slugs, Settings → Groups)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["reviewer", "admin", "builder"] | None = Field(default="reviewer")
    users: list[str] = Field(default_factory=list, max_length=50)
    groups: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _someone(self) -> Assignees:
        if not self.role and not self.users and not self.groups:
            raise ValueError("name a role, a reviewer group or at least one user")
        return self


class FormField(BaseModel):
    """An extra field the reviewer fills in with the decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    label: str = Field(default="", max_length=200)
    type: Literal["text", "textarea", "number", "boolean", "select"] = "text"
    required: bool = False
    options: list[str] = Field(default_factory=list, max_length=50)


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["reviewer", "admin", "builder"] | None = "admin"
    users: list[str] = Field(default_factory=list, max_length=50)
    due_in_hours: float | None = Field(default=None, gt=0, le=MAX_DUE_HOURS)


class HumanApprovalConfig(BlockConfig):
    title: Template = Field(
        min_length=1, description="Task title, e.g. 'Claim {{ trigger.body.id }}'"
    )
    description: Template = Field(default="", description="Instructions for the reviewer.")
    fields: dict[str, Expression] = Field(
        default_factory=dict,
        max_length=50,
        description="What the reviewer sees: label → CEL expression over the run's data.",
    )
    assignees: Assignees = Field(default_factory=Assignees)
    required_approvals: int = Field(
        default=1, ge=1, le=5, description="Distinct approvals needed (2 = four eyes)."
    )
    due_in_hours: float | None = Field(default=None, gt=0, le=MAX_DUE_HOURS)
    on_timeout: Literal["expire", "escalate", "approve", "reject"] = "expire"
    escalate_to: Escalation | None = None
    priority: Expression | None = Field(
        default=None, description="A number; higher is more urgent, e.g. steps.score.output.risk"
    )
    form: list[FormField] = Field(default_factory=list, max_length=20)

    @field_validator("form")
    @classmethod
    def _unique_names(cls, form: list[FormField]) -> list[FormField]:
        if len({field.name for field in form}) != len(form):
            raise ValueError("form field names must be unique")
        return form

    @model_validator(mode="after")
    def _escalation_named(self) -> HumanApprovalConfig:
        if self.on_timeout == "escalate" and self.escalate_to is None:
            raise ValueError("on_timeout 'escalate' needs escalate_to")
        if self.on_timeout != "expire" and self.due_in_hours is None:
            raise ValueError(f"on_timeout {self.on_timeout!r} needs due_in_hours")
        return self


class HumanApprovalBlock(Block):
    """Ask people to approve, reject or request changes; the run waits for the decision.

    Creates a task in the reviewer inbox showing ``fields`` and parks the run (no worker
    held). The decision resumes the run down ``approved``, ``rejected`` or
    ``changes_requested`` with the decision, reviewer and comment as output. When
    ``due_in_hours`` passes, the task escalates once (``on_timeout: escalate``), is
    decided automatically, or takes ``expired``.
    """

    key = "human.approval"
    title = "Human approval"
    category = "human"
    icon = "user-check"
    Config = HumanApprovalConfig
    ports = PORTS
    may_wait = True

    def execute(self, ctx: BlockContext, config: HumanApprovalConfig, input: Any) -> Result:
        due_at = (
            timezone.now() + timedelta(hours=config.due_in_hours) if config.due_in_hours else None
        )
        task_id = ctx.service("approvals").create(
            run_id=ctx.run_id,
            node_id=ctx.node_id,
            title=ctx.render(config.title),
            description=ctx.render(config.description) if config.description else "",
            data={label: ctx.evaluate(source) for label, source in config.fields.items()},
            form=[field.model_dump() for field in config.form],
            assignee_role=config.assignees.role or "",
            assignee_users=list(config.assignees.users),
            assignee_groups=list(config.assignees.groups),
            required_approvals=config.required_approvals,
            priority=self._priority(ctx, config),
            due_at=due_at,
            on_timeout=config.on_timeout,
            escalation=config.escalate_to.model_dump() if config.escalate_to else None,
        )
        return Result(
            wait=Wait(kind="approval", reference=task_id, deadline=due_at, state={"task": task_id}),
            meta={"task": task_id},
        )

    @staticmethod
    def _priority(ctx: BlockContext, config: HumanApprovalConfig) -> int:
        if not config.priority:
            return 0
        value = ctx.evaluate(config.priority)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BlockError(f"priority must be a number, got {value!r}")
        return round(value)

    def resume(
        self, ctx: BlockContext, config: HumanApprovalConfig, wait: Wait, signal: Mapping[str, Any]
    ) -> Result:
        task_id = wait.state["task"]
        if signal.get("timeout"):
            signal = ctx.service("approvals").timeout(task_id)
            if signal.get("action") == "escalated":
                due_at = signal["due_at"]
                return Result(
                    wait=Wait(
                        kind="approval",
                        reference=task_id,
                        deadline=datetime.fromisoformat(due_at) if due_at else None,
                        state={"task": task_id, "escalated": True},
                    ),
                    meta={"task": task_id, "escalated": True},
                )
        output = {
            "decision": signal.get("decision"),
            "reviewer": signal.get("reviewer"),
            "comment": signal.get("comment", ""),
            "data": signal.get("data", {}),
            "decided_at": signal.get("decided_at"),
            "approvals": signal.get("approvals", []),
            "task": task_id,
        }
        meta = {
            "task": task_id,
            "reviewer": signal.get("reviewer"),
            "decision": signal.get("decision"),
            "comment": signal.get("comment", ""),
            "approvals": signal.get("approvals", []),
            "shown": signal.get("shown", {}),
        }
        return Result(output=output, port=str(signal.get("port") or "expired"), meta=meta)


def register() -> None:
    from apps.blocks.registry import register_block, register_service

    from .services import ApprovalService

    register_block(HumanApprovalBlock)
    register_service("approvals", ApprovalService)
