"""Settings → Connections: admins create, edit, test and delete connections. Secrets are
write-only: forms never render them back. htmx requests to ``test`` get a partial."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability

from . import selectors, services
from .forms import ConnectionForm, EgressSettingsForm
from .models import Connection
from .types import ConnectionTypeError, connection_type_get, connection_types


def _detail_url(request: WorkspaceRequest, connection: Connection) -> str:
    return reverse(
        "connections:detail",
        kwargs={"workspace_slug": request.workspace.slug, "connection_id": connection.pk},
    )


@workspace_view(Capability.MANAGE_SETTINGS)
def connection_list_view(request: WorkspaceRequest) -> HttpResponse:
    connections = selectors.connection_list(workspace=request.workspace)
    return render(
        request,
        "connectors/list.html",
        {"connections": connections, "types": connection_types()},
    )


@workspace_view(Capability.MANAGE_SETTINGS)
def connection_create_view(request: WorkspaceRequest, type_key: str) -> HttpResponse:
    try:
        connection_type = connection_type_get(type_key)
    except ConnectionTypeError:
        raise Http404("No such connection type.") from None
    form = ConnectionForm(request.POST or None, connection_type=connection_type, creating=True)
    if request.method == "POST" and form.is_valid():
        try:
            connection = services.connection_create(
                workspace=request.workspace,
                actor=request.user,
                name=form.cleaned_data["name"],
                type=connection_type.key,
                description=form.cleaned_data["description"],
                config=form.config(),
                secrets=form.secrets(),
            )
        except services.ConnectionInvalid as error:
            form.add_service_errors(error.fields, error.message)
        else:
            messages.success(request, f"Connection {connection.name} created. Test it below.")
            return redirect(_detail_url(request, connection))
    return render(
        request,
        "connectors/form.html",
        {"form": form, "connection_type": connection_type},
        status=400 if form.errors else 200,
    )


@workspace_view(Capability.MANAGE_SETTINGS)
def connection_detail_view(request: WorkspaceRequest, connection_id: str) -> HttpResponse:
    connection = selectors.connection_get(
        workspace=request.workspace,
        connection_id=connection_id,
    )
    connection_type = connection_type_get(connection.type)
    initial = ConnectionForm.initial_for(connection.config, connection.description)
    form = ConnectionForm(
        request.POST or None, initial=initial, connection_type=connection_type, creating=False
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.connection_update(
                connection=connection,
                actor=request.user,
                config=form.config(),
                secrets=form.secrets(),
                clear_secrets=tuple(request.POST.getlist("clear_secret")),
                description=form.cleaned_data["description"],
            )
        except services.ConnectionInvalid as error:
            form.add_service_errors(error.fields, error.message)
        else:
            messages.success(request, f"Connection {connection.name} saved.")
            return redirect(_detail_url(request, connection))
    return render(
        request,
        "connectors/detail.html",
        {
            "connection": connection,
            "connection_type": connection_type,
            "form": form,
            "secrets_set": services.connection_secret_names(connection),
            "usage": selectors.connection_usage(connection=connection),
            "streams": _stream_status(connection),
        },
        status=400 if form.errors else 200,
    )


def _stream_status(connection: object) -> list[dict[str, object]]:
    if connection.type not in ("redis", "nats"):  # type: ignore[attr-defined]
        return []
    from .streams.consumer import stream_status

    return stream_status(workspace_id=connection.workspace_id, connection=connection.name)  # type: ignore[attr-defined]


@require_POST
@workspace_view(Capability.MANAGE_SETTINGS)
def connection_test_view(request: WorkspaceRequest, connection_id: str) -> HttpResponse:
    connection = selectors.connection_get(
        workspace=request.workspace,
        connection_id=connection_id,
    )
    outcome = services.connection_test(connection=connection)
    if request.htmx:
        return render(
            request,
            "connectors/partials/test_result.html",
            {"outcome": outcome},
            status=outcome.http_status,
        )
    (messages.success if outcome.ok else messages.error)(request, outcome.message)
    return redirect(_detail_url(request, connection))


@require_POST
@workspace_view(Capability.MANAGE_SETTINGS)
def connection_delete_view(request: WorkspaceRequest, connection_id: str) -> HttpResponse:
    connection = selectors.connection_get(
        workspace=request.workspace,
        connection_id=connection_id,
    )
    services.connection_delete(connection=connection, actor=request.user)
    messages.success(request, f"Connection {connection.name} deleted.")
    return redirect(reverse("connections:list", kwargs={"workspace_slug": request.workspace.slug}))


@workspace_view(Capability.MANAGE_SETTINGS)
def egress_settings_view(request: WorkspaceRequest) -> HttpResponse:
    """Settings → Egress: which private hosts and networks this workspace may call."""
    workspace = request.workspace
    current = selectors.egress_settings_get(workspace_id=workspace.id)
    form = EgressSettingsForm(
        request.POST or None, initial={"allowlist": "\n".join(current.allowlist)}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.egress_settings_save(
                workspace=workspace, actor=request.user, allowlist=form.entries()
            )
        except services.ConnectionInvalid as error:
            form.add_error("allowlist", error.message)
        else:
            messages.success(request, "Egress allow-list saved; it applies to the next call.")
            return redirect("connections:egress", workspace_slug=workspace.slug)
    context = {
        "form": form,
        "current": current,
        "environment": settings.FLOWGATE["SSRF_ALLOWLIST"],
    }
    return render(
        request,
        "connectors/egress.html",
        context,
        status=400 if request.method == "POST" else 200,
    )
