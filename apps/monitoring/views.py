"""Monitoring panels: on a model's page (drift, accuracy, alerts) and on the dashboard
(open alerts, automation and manual-override rates per flow, drift per model). Each is an
htmx fragment the host page loads; acknowledging an alert re-renders the dashboard panel."""

from __future__ import annotations

import re
from typing import Any

from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render

from apps.accounts.decorators import WorkspaceRequest, workspace_view
from apps.accounts.permissions import Capability, can
from apps.mlmodels.blocks import NAME_PATTERN
from apps.mlmodels.registry import RegistryNotFound, RegistryUnavailable

from . import alerts, reviews, selectors, services


def _latest_drift(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    last = rows[-1]["window_end"]
    latest = [row for row in rows if row["window_end"] == last]
    return sorted(latest, key=lambda row: (not row["drifted"], row["feature"], row["version"]))


def _drift_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Jensen-Shannon distance per feature over windows (one line per feature)."""
    windows = sorted({row["window_end"] for row in rows})
    lines: dict[str, dict[str, float | None]] = {}
    for row in rows:
        lines.setdefault(f"v{row['version']} {row['feature']}", {})[row["window_end"]] = row[
            "js_distance"
        ]
    return {
        "labels": [window[11:16] for window in windows],
        "series": {name: [line.get(w) for w in windows] for name, line in sorted(lines.items())},
    }


def _accuracy_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    windows = sorted({row["window"] for row in rows})
    lines: dict[str, dict[str, float]] = {}
    for row in rows:
        lines.setdefault(f"v{row['version']} accuracy", {})[row["window"]] = row["accuracy"]
    return {
        "labels": [window[11:16] for window in windows],
        "series": {name: [line.get(w) for w in windows] for name, line in sorted(lines.items())},
    }


def _model_context(request: WorkspaceRequest, model_name: str) -> dict[str, Any]:
    workspace_id = request.workspace.id
    monitor = services.monitor_get(workspace_id=workspace_id, model_name=model_name)
    drift = selectors.drift_series(workspace_id=workspace_id, model_name=model_name)
    performance = selectors.performance_series(
        workspace_id=workspace_id, model_name=model_name, window_minutes=monitor.window_minutes
    )
    can_manage = can(request.membership, Capability.MANAGE_MODELS)
    try:
        distributions = services.window_distributions(
            workspace_id=workspace_id,
            model_name=model_name,
            window_minutes=monitor.window_minutes,
        )
    except (RegistryUnavailable, RegistryNotFound):  # the reference profiles live in MLflow
        distributions = []
    return {
        "distributions": [
            {
                **field,
                "chart_id": f"distribution-{number}",
                "chart": {
                    "labels": field["labels"],
                    "series": {
                        f"training (v{field['version']})": field["reference"],
                        f"live (v{field['version']})": field["live"],
                    },
                },
            }
            for number, field in enumerate(distributions)
        ],
        "model_name": model_name,
        "monitor": monitor,
        "latest_drift": _latest_drift(drift),
        "performance": performance[-10:],
        "alerts": selectors.alerts_recent(workspace_id=workspace_id, model_name=model_name)[:10],
        "drift_chart": _drift_chart(drift),
        "accuracy_chart": _accuracy_chart(performance),
        "can_manage": can_manage,
        "form": _form_values(monitor) if can_manage else {},
        "channels": services.alert_channels(workspace=request.workspace) if can_manage else [],
        "errors": {},
    }


@workspace_view(Capability.VIEW_MODELS)
def model_panel_view(request: WorkspaceRequest, model_name: str) -> HttpResponse:
    return render(
        request, "monitoring/partials/model_panel.html", _model_context(request, model_name)
    )


def _form_values(monitor: Any) -> dict[str, Any]:
    """The settings as the form shows them (lists and mappings as text)."""
    return {
        "sample_rate": monitor.sample_rate,
        "window_minutes": monitor.window_minutes,
        "drift_p_value": monitor.drift_p_value,
        "min_window_samples": monitor.min_window_samples,
        "accuracy_min": monitor.accuracy_min,
        "alert_connections": list(monitor.alert_connections),
        "alert_recipients": ", ".join(monitor.alert_recipients),
        "review_labels": "\n".join(f"{k}: {v}" for k, v in monitor.review_labels.items()),
    }


NUMBER_FIELDS = (
    "sample_rate",
    "window_minutes",
    "drift_p_value",
    "min_window_samples",
    "accuracy_min",
)


def _settings_from_form(post: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's fields as the settings API takes them, and the errors of its text fields
    (the values themselves are checked by the API's serializer, one rule for both)."""
    data: dict[str, Any] = {name: post.get(name, "").strip() for name in NUMBER_FIELDS}
    data["alert_connections"] = post.getlist("alert_connections")
    recipients = post.get("alert_recipients", "").replace(",", " ").split()
    data["alert_recipients"] = recipients
    errors: dict[str, str] = {}
    labels: dict[str, str] = {}
    for line in post.get("review_labels", "").splitlines():
        if not line.strip():
            continue
        decision, colon, label = line.partition(":")
        if not colon or not decision.strip() or not label.strip():
            errors["review_labels"] = f"write one “decision: label” per line, not {line.strip()!r}"
            break
        labels[decision.strip()] = label.strip()
    data["review_labels"] = labels
    return data, errors


@workspace_view(Capability.MANAGE_MODELS)
def model_settings_view(request: WorkspaceRequest, model_name: str) -> HttpResponse:
    """POST (admins, htmx): save the model's monitoring settings from the panel's form and
    re-render the panel; bad values re-render it with each field's error (422)."""
    from .api import MonitorSettingsSerializer

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if len(model_name) > 200 or not re.match(NAME_PATTERN, model_name):
        raise Http404("No such model.")
    data, errors = _settings_from_form(request.POST)
    body = MonitorSettingsSerializer(data=data)
    if body.is_valid() and not errors:
        try:
            services.monitor_save(
                workspace=request.workspace,
                actor=request.user,
                model_name=model_name,
                **body.validated_data,
            )
        except services.SettingsError as refused:
            errors[refused.field] = refused.message
    else:
        for field, messages in body.errors.items():
            errors.setdefault(field, " ".join(_flatten(messages)))
    context = _model_context(request, model_name)
    if errors:
        form = {**data, "alert_recipients": request.POST.get("alert_recipients", "")}
        form["review_labels"] = request.POST.get("review_labels", "")
        context.update(form=form, errors=errors)
        return render(request, "monitoring/partials/model_panel.html", context, status=422)
    context["saved"] = True
    return render(request, "monitoring/partials/model_panel.html", context)


def _flatten(messages: Any) -> list[str]:
    """DRF's error detail (a list, or a mapping per list item) as plain messages."""
    if isinstance(messages, dict):
        return [f"{key}: {text}" for key, value in messages.items() for text in _flatten(value)]
    if isinstance(messages, list):
        return [text for item in messages for text in _flatten(item)]
    return [str(messages)]


def _dashboard_context(request: WorkspaceRequest) -> dict[str, Any]:
    workspace_id = request.workspace.id
    models = []
    for number, name in enumerate(selectors.monitored_models(workspace_id=workspace_id)):
        drift = selectors.drift_series(workspace_id=workspace_id, model_name=name)
        models.append(
            {
                "name": name,
                "latest": _latest_drift(drift),
                "chart": _drift_chart(drift),
                "chart_id": f"monitoring-drift-{number}",
            }
        )
    return {
        "alerts": selectors.alerts_recent(workspace_id=workspace_id)[:20],
        "flows": reviews.flow_automation(workspace_id=workspace_id),
        "models": models,
        "can_acknowledge": can(request.membership, Capability.MANAGE_MODELS),
    }


@workspace_view(Capability.VIEW_RUNS)
def dashboard_panel_view(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "monitoring/partials/dashboard_panel.html", _dashboard_context(request))


@workspace_view(Capability.MANAGE_MODELS)
def alert_acknowledge_view(request: WorkspaceRequest, alert_id: Any) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    error = ""
    try:
        alerts.alert_acknowledge(
            workspace=request.workspace,
            alert_id=alert_id,
            actor=request.user,
        )
    except alerts.AlertError as refused:
        error = refused.message
    context = {**_dashboard_context(request), "error": error}
    status = 200 if not error else 409
    return render(request, "monitoring/partials/dashboard_panel.html", context, status=status)
