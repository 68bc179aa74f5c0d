"""The Evaluate page: a flow's example cases, and comparisons of two of its versions
(pass rate, cost, latency) before publishing. Thin: parse, authorize, call a service or
selector, render; bad input is a 400 with the reason on the page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can
from apps.core import jsonsafe
from apps.flows.selectors import flow_get, flow_version_list

from . import selectors, services


def _page_url(request: WorkspaceRequest, flow: Any) -> str:
    return reverse(
        "evaluations:flow", kwargs={"workspace_slug": request.workspace.slug, "flow_id": flow.id}
    )


def _render_page(
    request: WorkspaceRequest, flow: Any, *, status: int = 200, **extra: Any
) -> HttpResponse:
    versions = [f"v{version.number}" for version in flow_version_list(flow=flow)]
    context = {
        "flow": flow,
        "cases": selectors.eval_case_list(flow=flow),
        "evaluations": selectors.evaluation_list(flow=flow),
        "references": ["draft", *versions],
        "baseline": versions[0] if versions else "draft",
        "candidate": "draft" if versions else "",
        "can_edit": can(request.membership, Capability.EDIT_FLOWS),
        "case_form": {},
        "errors": {},
        **extra,
    }
    return render(request, "evaluations/flow.html", context, status=status)


@workspace_view(Capability.VIEW_FLOWS)
def evaluate_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    return _render_page(request, flow_get(workspace=request.workspace, flow_id=flow_id))


def _json_field(raw: str, field: str, errors: dict[str, str]) -> Any:
    try:
        return jsonsafe.loads(raw.strip() or "{}")
    except jsonsafe.UnstorableJSON as error:
        errors[field] = f"not JSON: {error}"
        return None


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def case_add_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    flow = flow_get(workspace=request.workspace, flow_id=flow_id)
    form = {key: request.POST.get(key, "") for key in ("name", "input", "expected")}
    errors: dict[str, str] = {}
    input = _json_field(form["input"], "input", errors)
    expected = _json_field(form["expected"], "expected", errors)
    if not errors:
        try:
            services.eval_case_save(
                flow=flow, actor=request.user, name=form["name"], input=input, expected=expected
            )
        except services.EvaluationError as error:
            errors[error.field or "name"] = error.message
        else:
            messages.success(request, f"Case {form['name'].strip()!r} added.")
            return redirect(_page_url(request, flow))
    return _render_page(request, flow, status=400, case_form=form, errors=errors)


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def case_delete_view(request: WorkspaceRequest, flow_id: str, case_id: str) -> HttpResponse:
    flow = flow_get(workspace=request.workspace, flow_id=flow_id)
    case = selectors.eval_case_get(flow=flow, case_id=case_id)
    services.eval_case_delete(case=case, actor=request.user)
    messages.success(request, f"Case {case.name!r} deleted.")
    return redirect(_page_url(request, flow))


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def evaluation_start_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    flow = flow_get(workspace=request.workspace, flow_id=flow_id)
    baseline = request.POST.get("baseline", "")
    candidate = request.POST.get("candidate", "")
    try:
        evaluation = services.evaluation_start(
            flow=flow, actor=request.user, baseline=baseline, candidate=candidate
        )
    except services.EvaluationError as error:
        return _render_page(
            request,
            flow,
            status=400,
            errors={"compare": error.message},
            baseline=baseline,
            candidate=candidate,
        )
    return redirect(
        reverse(
            "evaluations:evaluation",
            kwargs={
                "workspace_slug": request.workspace.slug,
                "flow_id": flow.id,
                "evaluation_id": evaluation.id,
            },
        )
    )


@workspace_view(Capability.VIEW_FLOWS)
def evaluation_view(request: WorkspaceRequest, flow_id: str, evaluation_id: str) -> HttpResponse:
    """The comparison's report; an htmx request gets the report fragment (the page polls
    it until every run has settled)."""
    flow = flow_get(workspace=request.workspace, flow_id=flow_id)
    evaluation = selectors.evaluation_get(flow=flow, evaluation_id=evaluation_id)
    report = selectors.evaluation_report(evaluation=evaluation)
    context = {"flow": flow, "report": report}
    if request.htmx:
        return render(request, "evaluations/partials/report.html", context)
    return render(request, "evaluations/evaluation.html", context)
