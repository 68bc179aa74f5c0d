"""Models pages: the MLflow registry as Flowgate sees it, and four-eyes promotion.

Reading needs VIEW_MODELS; requesting, approving, rejecting and rolling back need
MANAGE_MODELS. A request is decided by a different admin (the services refuse the requester,
the ``model_promotion`` gate denies it too). When MLflow is unreachable the pages say so.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can

from . import registry, selectors, services
from .models import PromotionRequest, PromotionStatus


def _model_url(request: WorkspaceRequest, name: str) -> str:
    return reverse(
        "mlmodels:detail",
        kwargs={"workspace_slug": request.workspace.slug, "model_name": name},
    )


def _context(request: WorkspaceRequest, **extra: Any) -> dict[str, object]:
    model = extra.get("model")
    managed_here = model is None or model.managed_by(request.workspace)
    return {
        "can_manage": managed_here and can(request.membership, Capability.MANAGE_MODELS),
        "managed_elsewhere": not managed_here,
        "registry_uri": registry.tracking_uri(),
        "aliases": registry.ALIASES,
        **extra,
    }


def _requests(request: WorkspaceRequest, **filters: Any) -> list[tuple[PromotionRequest, str]]:
    """Promotion requests with why this user may not decide each ("" when they may)."""
    found = selectors.promotion_requests(workspace=request.workspace, **filters)
    rows = []
    for promotion in found[:50]:
        refusal = services.promotion_refusal(promotion, request.user)
        rows.append((promotion, refusal.message if refusal else ""))
    return rows


def _unavailable(
    request: WorkspaceRequest, error: Exception, title: str, *, status: int = 503, **extra: object
) -> HttpResponse:
    return render(
        request,
        "mlmodels/unavailable.html",
        _context(request, title=title, error=str(error), **extra),
        status=status,
    )


@workspace_view(Capability.VIEW_MODELS)
def model_list_view(request: WorkspaceRequest) -> HttpResponse:
    try:
        models = registry.list_models()
    except registry.RegistryUnavailable as error:
        # The section itself opens and says what is wrong (and what waits for a decision);
        # the pages below it are a 503.
        return _unavailable(
            request, error, "Models", status=200, requests=_requests(request, pending_only=True)
        )
    using = selectors.flows_using_models(workspace=request.workspace)
    rows = [(model, using.get(model.name, [])) for model in models]
    return render(
        request,
        "mlmodels/list.html",
        _context(request, rows=rows, requests=_requests(request, pending_only=True)),
    )


@workspace_view(Capability.VIEW_MODELS)
def model_detail_view(request: WorkspaceRequest, model_name: str) -> HttpResponse:
    try:
        model = registry.get_model(model_name)
    except registry.RegistryNotFound:
        return render(request, "404.html", status=404)
    except registry.RegistryUnavailable as error:
        return _unavailable(request, error, model_name)
    using = selectors.flows_using_models(workspace=request.workspace).get(model.name, [])
    return render(
        request,
        "mlmodels/detail.html",
        _context(
            request,
            model=model,
            flows=using,
            requests=_requests(request, model_name=model.name),
            previous={
                alias: previous
                for alias in model.aliases
                if (previous := registry.previous_version(model, alias))
            },
        ),
    )


@workspace_view(Capability.VIEW_MODELS)
def version_detail_view(request: WorkspaceRequest, model_name: str, version: int) -> HttpResponse:
    try:
        model = registry.get_model(model_name)
        info = registry.get_version(model_name, str(version))
    except registry.RegistryNotFound:
        return render(request, "404.html", status=404)
    except registry.RegistryUnavailable as error:
        return _unavailable(request, error, f"{model_name} v{version}")
    return render(
        request,
        "mlmodels/version.html",
        _context(request, model=model, version=info, thresholds=model.thresholds),
    )


def _report_rollback(request: HttpRequest, outcome: services.PromotionOutcome) -> None:
    if outcome.allowed:
        messages.success(
            request,
            f"{outcome.model} {outcome.alias} rolled back to version {outcome.version}"
            + (f" (was version {outcome.previous})" if outcome.previous else ""),
        )
    else:
        messages.error(
            request, "Rollback denied by the model_promotion policy: " + "; ".join(outcome.reasons)
        )


def _report_decision(request: HttpRequest, promotion: PromotionRequest) -> None:
    what = f"{promotion.model_name} version {promotion.version} → {promotion.alias}"
    if promotion.status == PromotionStatus.APPROVED:
        messages.success(request, f"Approved: {what} is live.")
    elif promotion.status == PromotionStatus.DENIED:
        messages.error(
            request,
            f"Approved, but {what} was denied by the model_promotion policy: "
            + "; ".join(promotion.reasons),
        )
    else:
        messages.info(request, f"Rejected: {what}.")


def _share(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return -1  # refused below with the allowed range


@workspace_view(Capability.MANAGE_MODELS)
def request_promotion_view(
    request: WorkspaceRequest, model_name: str, version: int
) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        services.promotion_request_create(
            workspace=request.workspace,
            actor=request.user,
            name=model_name,
            version=str(version),
            alias=request.POST.get("alias", "production"),
            canary_share=_share(request.POST.get("canary_share")),
            note=request.POST.get("note", "")[:2000],
        )
    except services.PromotionError as error:
        messages.error(request, error.message)
        return redirect(_model_url(request, model_name))
    messages.success(
        request,
        f"Promotion of {model_name} version {version} requested: another admin must approve it.",
    )
    return redirect(_model_url(request, model_name))


@workspace_view(Capability.MANAGE_MODELS)
def decide_promotion_view(
    request: WorkspaceRequest, promotion_id: UUID, decision: str
) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    promotion = selectors.promotion_get(workspace=request.workspace, promotion_id=promotion_id)
    act = services.promotion_approve if decision == "approve" else services.promotion_reject
    try:
        promotion = act(
            workspace=request.workspace,
            promotion_id=promotion.id,
            actor=request.user,
            note=request.POST.get("note", "")[:2000],
        )
    except services.PromotionError as error:
        if error.status == 403:
            return render(request, "403.html", {"reason": error.message}, status=403)
        messages.error(request, error.message)
    except registry.RegistryUnavailable as error:
        return _unavailable(request, error, promotion.model_name)
    else:
        _report_decision(request, promotion)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = _model_url(request, promotion.model_name)
    return redirect(back)


@workspace_view(Capability.MANAGE_MODELS)
def rollback_view(request: WorkspaceRequest, model_name: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    alias = request.POST.get("alias", "production")
    try:
        outcome = services.model_rollback(
            workspace=request.workspace,
            actor=request.user,
            name=model_name,
            alias=alias,
        )
    except services.PromotionError as error:
        messages.error(request, error.message)
        return redirect(_model_url(request, model_name))
    except registry.RegistryNotFound:
        return render(request, "404.html", status=404)
    except registry.RegistryUnavailable as error:
        return _unavailable(request, error, model_name)
    _report_rollback(request, outcome)
    return redirect(_model_url(request, model_name))
