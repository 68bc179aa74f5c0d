"""Run pages: the run list, the dead-letter list with bulk actions, and run detail.

Thin adapters over ``selectors`` and ``services``: parse, authorize (``workspace_view``),
call, render. An htmx request for the list or the detail gets the partial only, which is
how live updates (WebSocket events, or polling when the socket is down) refresh them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can
from apps.core import jsonsafe
from apps.flows.selectors import flow_get, flow_list

from . import selectors, services
from .blocks import envelope
from .forms import BulkRunActionForm, RunFilterForm
from .models import TERMINAL_RUN_STATUSES, RunStatus, Trigger

PAGE_SIZE = 25


def _page(request: HttpRequest, runs: Any) -> Any:
    return Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@workspace_view(Capability.VIEW_RUNS)
def run_list_view(request: WorkspaceRequest) -> HttpResponse:
    workspace = request.workspace
    form = RunFilterForm(request.GET or None, flows=flow_list(workspace=workspace))
    filters = form.selector_filters() if form.is_valid() else {}
    context = {
        "form": form,
        "page": _page(request, selectors.run_list(workspace=workspace, **filters)),
        "query": _query_without_page(request),
        "dead_letter_count": selectors.dead_letter_list(workspace=workspace).count(),
    }
    if request.htmx:
        return render(request, "runs/partials/run_table.html", context)
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "runs/list.html", context, status=status)


@workspace_view(Capability.VIEW_RUNS)
def dead_letter_view(request: WorkspaceRequest) -> HttpResponse:
    runs = selectors.dead_letter_list(workspace=request.workspace)
    page = _page(request, runs)
    context = {
        "page": page,
        "query": "",
        "can_manage": can(request.membership, Capability.MANAGE_RUNS),
    }
    return render(request, "runs/dead_letter.html", context)


@workspace_view(Capability.MANAGE_RUNS)
@require_POST
def bulk_action_view(request: WorkspaceRequest) -> HttpResponse:
    form = BulkRunActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Select at least one run and an action.")
        return redirect(_url(request, "dead_letter"))
    runs = selectors.run_list(workspace=request.workspace).filter(pk__in=form.cleaned_data["runs"])
    outcomes = services.run_bulk_action(
        runs=runs, action=form.cleaned_data["action"], actor=request.user
    )
    done = sum(outcome.ok for outcome in outcomes)
    verb = "Retried" if form.cleaned_data["action"] == "retry" else "Re-ran"
    if done:
        messages.success(request, f"{verb} {done} run{'s' if done != 1 else ''}.")
    for outcome in outcomes:
        if not outcome.ok:
            messages.error(request, f"Run {outcome.run_id[:8]}: {outcome.message}")
    return redirect(_url(request, "dead_letter"))


def _url(request: WorkspaceRequest, name: str, **kwargs: Any) -> str:
    return reverse(f"runs:{name}", kwargs={"workspace_slug": request.workspace.slug, **kwargs})


def _detail_context(request: WorkspaceRequest, run: Any) -> dict[str, Any]:
    return {
        "run": run,
        "steps": selectors.run_step_rows(run=run),
        "related": selectors.run_related(run=run),
        "active": run.status not in TERMINAL_RUN_STATUSES,
        "can_manage": can(request.membership, Capability.MANAGE_RUNS),
        "is_failed": run.status == RunStatus.FAILED,
    }


@workspace_view(Capability.VIEW_RUNS)
def run_detail_view(request: WorkspaceRequest, run_id: str) -> HttpResponse:
    run = selectors.run_get(workspace=request.workspace, run_id=run_id)
    context = _detail_context(request, run)
    if request.htmx:
        return render(request, "runs/partials/run_detail.html", context)
    return render(request, "runs/detail.html", context)


def _run_action(request: WorkspaceRequest, run_id: str, action: str) -> HttpResponse:
    run = selectors.run_get(workspace=request.workspace, run_id=run_id)
    operation = {
        "cancel": services.run_cancel,
        "retry": services.run_retry_from_failed,
        "rerun": services.run_rerun,
    }[action]
    try:
        result = operation(run=run, actor=request.user)
    except services.RunError as error:
        messages.error(request, f"Could not {action} the run: {error}.")
        return redirect(_url(request, "detail", run_id=run.id))
    text = {
        "cancel": "Run cancelled.",
        "retry": "Retrying from the failed step.",
        "rerun": "Started a new run on the latest version.",
    }[action]
    messages.success(request, text)
    return redirect(_url(request, "detail", run_id=result.id))


@workspace_view(Capability.MANAGE_RUNS)
@require_POST
def run_cancel_view(request: WorkspaceRequest, run_id: str) -> HttpResponse:
    return _run_action(request, run_id, "cancel")


@workspace_view(Capability.MANAGE_RUNS)
@require_POST
def run_retry_view(request: WorkspaceRequest, run_id: str) -> HttpResponse:
    return _run_action(request, run_id, "retry")


@workspace_view(Capability.MANAGE_RUNS)
@require_POST
def run_rerun_view(request: WorkspaceRequest, run_id: str) -> HttpResponse:
    return _run_action(request, run_id, "rerun")


@workspace_view(Capability.START_RUNS)
@require_POST
def run_start_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    """The manual trigger's button: run the published version with the JSON typed beside it,
    then follow the run on its page."""
    flow = flow_get(workspace=request.workspace, flow_id=flow_id)
    try:
        body = jsonsafe.loads(request.POST.get("input", "").strip() or "{}")
        started = services.run_start(
            flow=flow, trigger=Trigger.MANUAL, actor=request.user, payload=envelope(body)
        )
    except (jsonsafe.UnstorableJSON, services.RunError) as error:
        messages.error(request, f"{flow.name} was not started: {error}.")
        return redirect(reverse("flows:list", kwargs={"workspace_slug": request.workspace.slug}))
    number = started.run.version.number if started.run.version else "?"
    messages.success(request, f"Started a run of {flow.name} v{number}.")
    return redirect(_url(request, "detail", run_id=started.run.id))
