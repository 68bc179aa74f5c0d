"""REST API for review tasks: list, counts, detail, claim/release and decide."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability

from . import selectors, services
from .models import Decision, ReviewTask


def _user(user: Any) -> str | None:
    return user.username if user is not None else None


def task_summary(task: ReviewTask) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "flow": {"id": str(task.flow_id), "name": task.flow.name},
        "run": str(task.run_id),
        "node": task.node_id,
        "assignee_role": task.assignee_role or None,
        "required_approvals": task.required_approvals,
        "due_at": task.due_at,
        "overdue": task.is_overdue,
        "claimed_by": _user(task.claimed_by),
        "decision": task.decision or None,
        "decided_by": _user(task.decided_by),
        "decided_at": task.decided_at,
        "created_at": task.created_at,
        "version": task.version,
    }


def task_detail(task: ReviewTask) -> dict[str, Any]:
    return {
        **task_summary(task),
        "description": task.description,
        "data": task.data,
        "form": task.form,
        "comment": task.comment,
        "decision_data": task.decision_data,
        "approvals": [
            {
                "reviewer": approval.user.username,
                "comment": approval.comment,
                "at": approval.created_at,
            }
            for approval in task.approvals.select_related("user")
        ],
    }


def task_error(error: services.TaskError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields:
        body["fields"] = error.fields
    return Response({"error": body}, status=error.status)


class TaskListApi(WorkspaceAPIView):
    """Tasks of the workspace: ``view`` mine/team/all, ``status`` open/decided/<status>,
    ``flow``, ``priority=high``, ``due`` overdue/today, ``q``, ``sort`` priority/due."""

    capability = Capability.VIEW_RUNS

    def get(self, request, workspace_slug):
        filters = selectors.TaskFilters.from_query(request.query_params, request.membership)
        tasks = selectors.task_list(
            user=request.user, membership=request.membership, filters=filters
        )
        return Response(
            {
                "view": filters.view,
                "results": [task_summary(task) for task in tasks[: selectors.PAGE_SIZE]],
            }
        )


class TaskCountsApi(WorkspaceAPIView):
    """Open tasks per inbox tab and the overdue ones among mine."""

    capability = Capability.VIEW_RUNS

    def get(self, request, workspace_slug):
        return Response(selectors.task_counts(user=request.user, membership=request.membership))


class TaskDetailApi(WorkspaceAPIView):
    capability = Capability.VIEW_RUNS

    def get(self, request, workspace_slug, task_id):
        return Response(
            task_detail(selectors.task_get(workspace=request.workspace, task_id=task_id))
        )


class DecideSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    data = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
    version = serializers.IntegerField(required=False, min_value=1)


class TaskDecideApi(WorkspaceAPIView):
    """Approve, reject or request changes. 409 when the task was already decided, expired,
    claimed by someone else or changed since ``version``; 403 when not yours to decide."""

    capability = Capability.DECIDE_TASKS
    request_serializer = DecideSerializer

    def post(self, request, workspace_slug, task_id):
        task = selectors.task_get(workspace=request.workspace, task_id=task_id)
        body = DecideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            task = services.task_decide(
                task=task,
                actor=request.user,
                membership=request.membership,
                decision=body.validated_data["decision"],
                comment=body.validated_data["comment"],
                data=body.validated_data["data"],
                expected_version=body.validated_data.get("version"),
            )
        except services.TaskError as error:
            return task_error(error)
        return Response(task_detail(task))


class TaskClaimApi(WorkspaceAPIView):
    """Claim a task (``release`` gives it back)."""

    capability = Capability.DECIDE_TASKS
    action = "claim"

    def post(self, request, workspace_slug, task_id):
        task = selectors.task_get(workspace=request.workspace, task_id=task_id)
        act = services.task_release if self.action == "release" else services.task_claim
        try:
            task = act(task=task, actor=request.user, membership=request.membership)
        except services.TaskError as error:
            return task_error(error)
        return Response(task_summary(task))
