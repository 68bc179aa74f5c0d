"""Monitoring panels: on a model's page (drift, accuracy, alerts) and on the dashboard
(open alerts, automation and manual-override rates per flow, drift per model). Each is an
htmx fragment the host page loads; acknowledging an alert re-renders the dashboard panel."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render

from apps.accounts.decorators import workspace_view
from apps.accounts.permissions import Capability, can

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


@workspace_view(Capability.VIEW_MODELS)
def model_panel_view(request: HttpRequest, model_name: str) -> HttpResponse:
    workspace_id = request.workspace.id  # type: ignore[attr-defined]
    monitor = services.monitor_get(workspace_id=workspace_id, model_name=model_name)
    drift = selectors.drift_series(workspace_id=workspace_id, model_name=model_name)
    performance = selectors.performance_series(
        workspace_id=workspace_id, model_name=model_name, window_minutes=monitor.window_minutes
    )
    context = {
        "model_name": model_name,
        "monitor": monitor,
        "latest_drift": _latest_drift(drift),
        "performance": performance[-10:],
        "alerts": selectors.alerts_recent(workspace_id=workspace_id, model_name=model_name)[:10],
        "drift_chart": _drift_chart(drift),
        "accuracy_chart": _accuracy_chart(performance),
    }
    return render(request, "monitoring/partials/model_panel.html", context)


def _dashboard_context(request: HttpRequest) -> dict[str, Any]:
    workspace_id = request.workspace.id  # type: ignore[attr-defined]
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
        "can_acknowledge": can(request.membership, Capability.MANAGE_MODELS),  # type: ignore[attr-defined]
    }


@workspace_view(Capability.VIEW_RUNS)
def dashboard_panel_view(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/partials/dashboard_panel.html", _dashboard_context(request))


@workspace_view(Capability.MANAGE_MODELS)
def alert_acknowledge_view(request: HttpRequest, alert_id: Any) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    error = ""
    try:
        alerts.alert_acknowledge(
            workspace=request.workspace,  # type: ignore[attr-defined]
            alert_id=alert_id,
            actor=request.user,
        )
    except alerts.AlertError as refused:
        error = refused.message
    context = {**_dashboard_context(request), "error": error}
    status = 200 if not error else 409
    return render(request, "monitoring/partials/dashboard_panel.html", context, status=status)
