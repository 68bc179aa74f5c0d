"""Flow pages: thin adapters that authorize (``workspace_view``), call one selector or
service and render. The canvas editor is a JavaScript island that talks to the REST API
(``apps/flows/api.py``, ``apps/runs/api.py``); this module only serves its page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can, may_publish, may_request_publish
from apps.core import jsonsafe

from . import selectors, services
from .gallery import template_definition, template_list
from .models import Flow

MAX_IMPORT_BYTES = 5 * 1024 * 1024


def _list_url(request: WorkspaceRequest) -> str:
    return reverse("flows:list", kwargs={"workspace_slug": request.workspace.slug})


def _editor_url(request: WorkspaceRequest, flow: Flow) -> str:
    return reverse(
        "flows:editor",
        kwargs={"workspace_slug": request.workspace.slug, "flow_id": flow.id},
    )


def _list_context(request: WorkspaceRequest) -> dict[str, object]:
    search = request.GET.get("q", "").strip()[:200]
    archived = request.GET.get("archived") == "1"
    flows = selectors.flow_list(
        workspace=request.workspace,
        search=search,
        include_archived=archived,
    )
    return {
        "flows": flows,
        "search": search,
        "archived": archived,
        "templates": template_list(),
        "can_edit": can(request.membership, Capability.EDIT_FLOWS),
        "can_run": can(request.membership, Capability.START_RUNS),
    }


@workspace_view(Capability.VIEW_FLOWS)
def flow_list_view(request: WorkspaceRequest) -> HttpResponse:
    context = _list_context(request)
    if request.htmx and request.htmx.target == "flow-results":
        return render(request, "flows/partials/flow_table.html", context)
    return render(request, "flows/list.html", context)


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def flow_create_view(request: WorkspaceRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()[:200]
    key = request.POST.get("template", "").strip()
    definition = None
    if key:
        known = {template["key"]: template for template in template_list()}
        if key not in known:
            messages.error(request, "That template does not exist.")
            return redirect(_list_url(request))
        definition = template_definition(key)
        name = name or known[key]["name"]
    try:
        flow = services.flow_create(
            workspace=request.workspace,
            actor=request.user,
            name=name or "Untitled flow",
            definition=definition,
        )
    except services.FlowError as error:
        messages.error(request, f"The flow was not created: {error.message}.")
        return redirect(_list_url(request))
    return redirect(_editor_url(request, flow))


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def flow_import_view(request: WorkspaceRequest) -> HttpResponse:
    """Create a flow from an uploaded ``*.flow.json``; a broken or foreign file creates
    nothing and lists its problems."""
    upload = request.FILES.get("file")
    problems: list[str] = []
    if upload is None:
        error = "Choose a .flow.json file to import."
    elif (upload.size or 0) > MAX_IMPORT_BYTES:
        error = "That file is too large for a flow."
    else:
        try:
            document = jsonsafe.loads(upload.read())
        except jsonsafe.UnstorableJSON as problem:
            error = f"That file cannot be imported: {problem}."
        else:
            try:
                flow = services.flow_import(
                    workspace=request.workspace,
                    actor=request.user,
                    document=document,
                )
            except services.FlowError as problem:
                error = f"Nothing was imported: {problem.message}."
                problems = [str(item) for item in problem.problems]
            else:
                messages.success(request, f"Imported “{flow.name}”.")
                return redirect(_editor_url(request, flow))
    context = {**_list_context(request), "import_error": error, "import_problems": problems}
    return render(request, "flows/list.html", context, status=400)


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def flow_duplicate_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    copy = services.flow_duplicate(flow=flow, actor=request.user)
    messages.success(request, f"Created “{copy.name}”.")
    return redirect(_list_url(request))


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def flow_archive_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    services.flow_archive(flow=flow, actor=request.user)
    messages.success(request, f"Archived “{flow.name}”.")
    return redirect(_list_url(request))


@require_POST
@workspace_view(Capability.EDIT_FLOWS)
def flow_restore_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    services.flow_restore(flow=flow, actor=request.user)
    messages.success(request, f"Restored “{flow.name}”.")
    return redirect(_editor_url(request, flow))


@workspace_view(Capability.VIEW_FLOWS)
def flow_editor_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    membership = request.membership
    return render(
        request,
        "flows/editor.html",
        {
            "flow": flow,
            "can_edit": can(membership, Capability.EDIT_FLOWS),
            "can_publish": may_publish(membership),
            "can_request_publish": may_request_publish(membership),
        },
    )


@workspace_view(Capability.VIEW_FLOWS)
def flow_webhook_view(request: WorkspaceRequest, flow_id: str) -> HttpResponse:
    """The flow's webhook URL and signing secret. An admin's POST generates (or rotates) the
    secret, shown in this response only."""
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    can_rotate = can(request.membership, Capability.MANAGE_SETTINGS)
    secret = ""
    if request.method == "POST":
        if not can_rotate:
            raise PermissionDenied("Only an admin can rotate a signing secret.")
        secret = services.flow_webhook_secret_rotate(flow=flow, actor=request.user)
    response = render(
        request,
        "flows/webhook.html",
        {
            "flow": flow,
            "can_rotate": can_rotate,
            "secret": secret,
            "webhook_url": request.build_absolute_uri(f"/hooks/{flow.webhook_token}"),
        },
    )
    if secret:
        response["Cache-Control"] = "no-store"  # the page holds a secret
    return response
