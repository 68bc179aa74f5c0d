"""Models pages: the MLflow registry as Flowgate sees it, and gated promotion.

Reading needs VIEW_MODELS; promoting and rolling back need MANAGE_MODELS and then the
``model_promotion`` policy gate. When MLflow is unreachable the pages say so and render.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.accounts.decorators import workspace_view
from apps.accounts.permissions import Capability, can

from . import registry, selectors, services


def _model_url(request: HttpRequest, name: str) -> str:
    return reverse(
        "mlmodels:detail",
        kwargs={"workspace_slug": request.workspace.slug, "model_name": name},  # type: ignore[attr-defined]
    )


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    return {
        "can_manage": can(request.membership, Capability.MANAGE_MODELS),  # type: ignore[attr-defined]
        "registry_uri": registry.tracking_uri(),
        "aliases": registry.ALIASES,
        **extra,
    }


def _unavailable(
    request: HttpRequest, error: Exception, title: str, *, status: int = 503
) -> HttpResponse:
    return render(
        request,
        "mlmodels/unavailable.html",
        _context(request, title=title, error=str(error)),
        status=status,
    )


@workspace_view(Capability.VIEW_MODELS)
def model_list_view(request: HttpRequest) -> HttpResponse:
    try:
        models = registry.list_models()
    except registry.RegistryUnavailable as error:
        # The section itself opens and says what is wrong; the pages below it are a 503.
        return _unavailable(request, error, "Models", status=200)
    using = selectors.flows_using_models(workspace=request.workspace)  # type: ignore[attr-defined]
    rows = [(model, using.get(model.name, [])) for model in models]
    return render(request, "mlmodels/list.html", _context(request, rows=rows))


@workspace_view(Capability.VIEW_MODELS)
def model_detail_view(request: HttpRequest, model_name: str) -> HttpResponse:
    try:
        model = registry.get_model(model_name)
    except registry.RegistryNotFound:
        return render(request, "404.html", status=404)
    except registry.RegistryUnavailable as error:
        return _unavailable(request, error, model_name)
    using = selectors.flows_using_models(workspace=request.workspace).get(model.name, [])  # type: ignore[attr-defined]
    return render(
        request,
        "mlmodels/detail.html",
        _context(
            request,
            model=model,
            flows=using,
            previous={
                alias: previous
                for alias in model.aliases
                if (previous := registry.previous_version(model, alias))
            },
        ),
    )


@workspace_view(Capability.VIEW_MODELS)
def version_detail_view(request: HttpRequest, model_name: str, version: int) -> HttpResponse:
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


def _report(request: HttpRequest, outcome: services.PromotionOutcome, verb: str) -> None:
    if outcome.allowed:
        messages.success(
            request,
            f"{outcome.model} version {outcome.version} {verb} to {outcome.alias}"
            + (f" (was version {outcome.previous})" if outcome.previous else ""),
        )
    else:
        messages.error(
            request,
            f"{'Rollback' if verb == 'rolled back' else 'Promotion'} denied by the "
            "model_promotion policy: " + "; ".join(outcome.reasons),
        )


@workspace_view(Capability.MANAGE_MODELS)
def promote_view(request: HttpRequest, model_name: str, version: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    alias = request.POST.get("alias", "production")
    if alias not in registry.ALIASES:
        messages.error(request, f"Unknown alias {alias!r}.")
        return redirect(_model_url(request, model_name))
    try:
        outcome = services.model_promote(
            workspace=request.workspace,  # type: ignore[attr-defined]
            actor=request.user,
            name=model_name,
            version=str(version),
            alias=alias,
        )
    except registry.RegistryNotFound:
        return render(request, "404.html", status=404)
    except registry.RegistryUnavailable as error:
        return _unavailable(request, error, model_name)
    _report(request, outcome, "promoted")
    return redirect(_model_url(request, model_name))


@workspace_view(Capability.MANAGE_MODELS)
def rollback_view(request: HttpRequest, model_name: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    alias = request.POST.get("alias", "production")
    try:
        outcome = services.model_rollback(
            workspace=request.workspace,  # type: ignore[attr-defined]
            actor=request.user,
            name=model_name,
            alias=alias,
        )
    except registry.RegistryNotFound:
        return render(request, "404.html", status=404)
    except registry.RegistryUnavailable as error:
        return _unavailable(request, error, model_name)
    _report(request, outcome, "rolled back")
    return redirect(_model_url(request, model_name))
