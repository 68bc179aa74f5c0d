"""Audit pages: the trail with filters, chain verification, exports, and the explanation
of one decision. Thin adapters over ``selectors`` and ``services``."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability

from . import export, selectors, services
from .decision_facts import decision_facts
from .forms import AuditFilterForm, DataSettingsForm
from .redaction import redact_for_workspace, sensitive_keys_for_workspace

PAGE_SIZE = 50


def _filtered(request: WorkspaceRequest) -> tuple[AuditFilterForm, Any]:
    workspace = request.workspace
    services.audit_seal()  # what a person reads is sealed (the sealer runs every second)
    form = AuditFilterForm(
        request.GET or None, actions=selectors.audit_action_list(workspace=workspace)
    )
    filters = form.selector_filters() if form.is_valid() else {}
    return form, selectors.audit_event_list(workspace=workspace, **filters)


@workspace_view(Capability.VIEW_AUDIT)
def audit_list_view(request: WorkspaceRequest) -> HttpResponse:
    form, events = _filtered(request)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": Paginator(events, PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query.urlencode(),
    }
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "audit/list.html", context, status=status)


@workspace_view(Capability.VIEW_AUDIT)
@require_POST
def audit_verify_view(request: WorkspaceRequest) -> HttpResponse:
    report = services.audit_verify(workspace_id=request.workspace.id)
    context = {"report": report, "checked_at": timezone.now()}
    if request.htmx:
        return render(request, "audit/partials/verify_result.html", context)
    return render(request, "audit/verify.html", context)


@workspace_view(Capability.VIEW_AUDIT)
def audit_export_view(request: WorkspaceRequest, format: str) -> HttpResponseBase:
    form, events = _filtered(request)
    if form.is_bound and not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    slug = request.workspace.slug
    # Fields classified since an event was recorded are masked in the export too.
    sensitive = sensitive_keys_for_workspace(request.workspace.id)
    if format == "csv":
        lines, content_type, extension = export.csv_lines(events, sensitive), "text/csv", "csv"
    else:
        lines = export.jsonl_lines(events, sensitive)
        content_type, extension = "application/jsonl", "jsonl"
    response = StreamingHttpResponse(lines, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{slug}-{stamp}.{extension}"'
    return response


@workspace_view(Capability.VIEW_RUNS)
def decision_view(request: WorkspaceRequest, run_id: str, node_id: str) -> HttpResponse:
    workspace = request.workspace
    services.audit_seal()  # the record shows its digests
    event = selectors.decision_get(workspace=workspace, run_id=run_id, node_id=node_id)
    data = redact_for_workspace(workspace.id, event.data)
    meta = data.get("meta") or {}
    context = {
        # The run (apps.runs) and the policy version (apps.policies) the decision names.
        **decision_facts(workspace=workspace, data={**event.data, "run": str(run_id)}),
        "event": event,
        "data": data,
        "category": event.action.removeprefix("decision."),
        "model": _model_facts(meta),
        "policy": _policy_facts(meta),
        "other_decisions": [
            other
            for other in selectors.decisions_of_run(workspace=workspace, run_id=run_id)
            if other.data.get("node") != node_id
        ],
        "reviewer": meta.get("reviewer") or (event.actor_label if event.actor_id else ""),
        "reasons": meta.get("reasons") or (event.data.get("result") or {}).get("reasons", []),
    }
    return render(request, "audit/decision.html", context)


MODEL_FACTS = {
    "model": "Model",
    "model_version": "Version",
    "alias": "Alias",
    "model_alias": "Alias",
    "provider": "Provider",
    "cost": "Cost (est.)",
    "confidence": "Confidence",
    "latency_ms": "Latency (ms)",
    "device": "Device",
    "shadow": "Shadow",
    "canary": "Canary",
}
POLICY_FACTS = {
    "policy": "Policy",
    "policy_version": "Version",
    "duration_ms": "Evaluation (ms)",
    "error": "Error",
}


def _model_facts(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        (label, meta[key]) for key, label in MODEL_FACTS.items() if meta.get(key) not in (None, "")
    ]


def _policy_facts(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        (label, meta[key]) for key, label in POLICY_FACTS.items() if meta.get(key) not in (None, "")
    ]


@workspace_view(Capability.MANAGE_SETTINGS)
def data_settings_view(request: WorkspaceRequest) -> HttpResponse:
    """Settings → Data: which fields are PII, and how long run data is kept."""
    workspace = request.workspace
    current = selectors.data_settings_get(workspace_id=workspace.id)
    if request.method == "POST":
        form = DataSettingsForm(request.POST)
        if form.is_valid():
            services.data_settings_save(
                workspace=workspace,
                actor=request.user,
                sensitive_fields=form.cleaned_data["sensitive_fields"],
                retention_days=form.cleaned_data["retention_days"],
            )
            messages.success(request, "Data settings saved.")
            return redirect("data_settings:edit", workspace_slug=workspace.slug)
        status = 400
    else:
        form = DataSettingsForm(
            initial={
                "sensitive_fields": "\n".join(current.sensitive_fields),
                "retention_days": current.retention_days,
            }
        )
        status = 200
    context = {
        "form": form,
        "current": current,
        "last_purge": selectors.last_purge_get(workspace_id=workspace.id),
    }
    return render(request, "audit/data_settings.html", context, status=status)
