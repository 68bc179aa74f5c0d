"""The reviewer inbox: the task list (page or htmx fragment), a task, and decisions."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can, may_publish
from apps.flows.models import Flow
from apps.flows.selectors import pending_publish_requests

from . import selectors, services
from .models import Decision, TaskStatus


@workspace_view(Capability.VIEW_RUNS)
def task_list(request: WorkspaceRequest) -> HttpResponse:
    membership = request.membership
    filters = selectors.TaskFilters.from_query(request.GET, membership)
    tasks = list(
        selectors.task_list(user=request.user, membership=membership, filters=filters)[
            : selectors.PAGE_SIZE
        ]
    )
    context: dict[str, Any] = {
        "tasks": tasks,
        "filters": filters,
        "counts": selectors.task_counts(user=request.user, membership=membership),
        "can_decide": can(membership, Capability.DECIDE_TASKS),
        "can_view_all": can(membership, Capability.VIEW_ALL_TASKS),
    }
    if request.htmx:
        return render(request, "inbox/partials/task_list.html", context)
    context["flows"] = Flow.objects.filter(workspace=membership.workspace).order_by("name")
    if may_publish(membership):  # builders' requests to publish wait for an admin here
        context["publish_requests"] = pending_publish_requests(workspace=membership.workspace)
    # "open" is the first option, a group (open and escalated): not listed again below it.
    context["statuses"] = [choice for choice in TaskStatus.choices if choice[0] != TaskStatus.OPEN]
    return render(request, "inbox/list.html", context)


@workspace_view(Capability.VIEW_RUNS)
def task_detail(request: WorkspaceRequest, task_id: Any) -> HttpResponse:
    return _detail(request, task_id)


def _detail(
    request: WorkspaceRequest, task_id: Any, *, error: services.TaskError | None = None
) -> HttpResponse:
    membership = request.membership
    task = selectors.task_get(workspace=membership.workspace, task_id=task_id)
    history = selectors.task_history(task=task)
    refusal = services.decision_refusal(task, request.user, membership) if task.is_open else None
    context = {
        "task": task,
        "case": [(label, _display(value), _items(value)) for label, value in task.data.items()],
        "history": history,
        "reasons": selectors.decision_reasons(history),
        "approvals": list(task.approvals.select_related("user")),
        "refusal": refusal,
        "error": error,
        "posted": request.POST if error else {},
        # The reviewer's entries come back with an error, not blank.
        "form_fields": [
            {**field, "value": request.POST.get(f"field_{field['name']}", "") if error else ""}
            for field in task.form
        ],
        "decisions": Decision.choices,
        "offers_changes": Decision.REQUEST_CHANGES in services.decisions_offered(task),
    }
    return render(request, "inbox/detail.html", context, status=error.status if error else 200)


@require_POST
@workspace_view(Capability.DECIDE_TASKS)
def task_decide(request: WorkspaceRequest, task_id: Any) -> HttpResponse:
    membership = request.membership
    task = selectors.task_get(workspace=membership.workspace, task_id=task_id)
    version = request.POST.get("version", "")
    try:
        task = services.task_decide(
            task=task,
            actor=request.user,
            membership=membership,
            decision=request.POST.get("decision", ""),
            comment=request.POST.get("comment", ""),
            data={
                field["name"]: request.POST.get(f"field_{field['name']}")
                for field in task.form
                if f"field_{field['name']}" in request.POST
            },
            expected_version=int(version) if version.isdigit() else None,
        )
    except services.TaskError as error:
        return _detail(request, task_id, error=error)
    if task.is_open:
        messages.success(request, "Your approval is recorded; another reviewer must approve too.")
    else:
        messages.success(request, f"{task.get_status_display()}: {task.title}")
    following = selectors.task_next(task=task, user=request.user, membership=membership)
    if following is not None and request.POST.get("next") == "1":
        return redirect(_task_url(request, following.pk))
    return redirect(reverse("inbox:list", kwargs={"workspace_slug": membership.workspace.slug}))


@require_POST
@workspace_view(Capability.DECIDE_TASKS)
def task_claim(request: WorkspaceRequest, task_id: Any, release: bool = False) -> HttpResponse:
    membership = request.membership
    task = selectors.task_get(workspace=membership.workspace, task_id=task_id)
    action = services.task_release if release else services.task_claim
    try:
        action(task=task, actor=request.user, membership=membership)
    except services.TaskError as error:
        return _detail(request, task_id, error=error)
    messages.success(request, "Released." if release else "Claimed: the task is yours.")
    return redirect(_task_url(request, task.pk))


@require_POST
@workspace_view(Capability.DECIDE_TASKS)
def task_bulk_decide(request: WorkspaceRequest) -> HttpResponse:
    """Decide the selected tasks one by one; each is its own transaction."""
    membership = request.membership
    decided, refused = 0, []
    for task_id in request.POST.getlist("task")[: selectors.PAGE_SIZE]:
        try:
            task = selectors.task_get(workspace=membership.workspace, task_id=task_id)
            services.task_decide(
                task=task,
                actor=request.user,
                membership=membership,
                decision=request.POST.get("decision", ""),
                comment=request.POST.get("comment", ""),
            )
            decided += 1
        except services.TaskError as error:
            refused.append(f"{task.title}: {error.message}")
        except (Http404, ValidationError):  # another workspace's id, or malformed
            refused.append("a selected task no longer exists")
    if decided:
        messages.success(request, f"Decided {decided} task{'s' if decided != 1 else ''}.")
    for reason in refused[:10]:
        messages.error(request, reason)
    return redirect(reverse("inbox:list", kwargs={"workspace_slug": membership.workspace.slug}))


def _display(value: Any) -> str:
    """Case data as text: strings as they are, anything else as JSON (never as HTML)."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _items(value: Any) -> list[str]:
    """A list of plain values (a policy's reasons) as lines to list, not as JSON."""
    if isinstance(value, list) and value and all(_plain(item) for item in value):
        return [str(item) for item in value]
    return []


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _task_url(request: WorkspaceRequest, task_id: Any) -> str:
    slug = request.workspace.slug
    return reverse("inbox:detail", kwargs={"workspace_slug": slug, "task_id": task_id})
