"""Pages for publish requests: a builder asks, an admin reviews and decides."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, may_publish, may_request_publish

from . import selectors
from .models import PublishRequest
from .publish_requests import publish_request_create, publish_request_decide, publish_request_diff
from .services import FlowError


def _request_get(request: WorkspaceRequest, request_id: str) -> PublishRequest:
    found = (
        PublishRequest.objects.filter(workspace=request.workspace, pk=request_id)
        .select_related("flow", "flow__latest_version", "requested_by", "decided_by", "version")
        .first()
    )
    if found is None:
        raise Http404("No such publish request.")
    return found


def _error_text(error: FlowError) -> str:
    details = [f"{p.node or '-'}: {p.message}" for p in error.problems] + error.reasons
    text = error.message[:1].upper() + error.message[1:]
    return text + (" — " + "; ".join(details) if details else ".")


@workspace_view(Capability.EDIT_FLOWS)
def request_create(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    """ "Request publish": the note, draft or rollback, and what would change."""
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    if not may_request_publish(request.membership):
        messages.info(request, "Admins publish flows themselves.")
        return redirect("flows:editor", workspace_slug=flow.workspace.slug, flow_id=flow.id)
    error = ""
    if request.method == "POST":
        raw = request.POST.get("rollback_to", "")
        try:
            created = publish_request_create(
                flow=flow,
                actor=request.user,
                note=request.POST.get("note", ""),
                rollback_to=int(raw) if raw.isdigit() else None,
            )
        except FlowError as refused:
            error = _error_text(refused)
        else:
            messages.success(request, "Requested: an admin will see it in their inbox.")
            return redirect(
                "flows:request", workspace_slug=flow.workspace.slug, request_id=created.id
            )
    preview = PublishRequest(flow=flow, definition=flow.draft_definition)
    context = {
        "flow": flow,
        "versions": flow.versions.all()[:50],
        "diff": publish_request_diff(preview),
        "error": error,
    }
    return render(request, "flows/publish_request_new.html", context, status=400 if error else 200)


@workspace_view(Capability.VIEW_FLOWS)
def request_detail(request: WorkspaceRequest, request_id: str) -> HttpResponse:
    publish_request = _request_get(request, request_id)
    context = {
        "pr": publish_request,
        "diff": publish_request_diff(publish_request),
        "can_decide": may_publish(request.membership)
        and publish_request.requested_by_id != request.user.pk,
    }
    return render(request, "flows/publish_request.html", context)


@workspace_view(Capability.PUBLISH_FLOWS)
@require_POST
def request_decide(request: WorkspaceRequest, request_id: str) -> HttpResponse:
    publish_request = _request_get(request, request_id)
    if not may_publish(request.membership):
        raise Http404("No such publish request.")
    approve = request.POST.get("decision") == "approve"
    try:
        decided = publish_request_decide(
            request=publish_request,
            actor=request.user,
            approve=approve,
            comment=request.POST.get("comment", ""),
        )
    except FlowError as refused:
        messages.error(request, _error_text(refused))
    else:
        if approve and decided.version is not None:
            live = f"{decided.flow.name} v{decided.version.number}"
            messages.success(request, f"Approved: {live} is live.")
        else:
            messages.success(request, f"Rejected the request for {decided.flow.name}.")
    return redirect("flows:request", workspace_slug=request.workspace.slug, request_id=request_id)
