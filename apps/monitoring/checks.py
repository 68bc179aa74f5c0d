"""The scheduled check (beat task ``monitoring.check``): drift, accuracy, SLO breaches and
canary analysis for one workspace, each raising or resolving its alert.

Canary analysis feeds the live signals of the canary and production versions to the
``canary_analysis`` policy; on ``rollback`` the canary is rolled back at once through the
promotion gate's emergency rule (audited), on ``promote_request`` the admins are told
(promotion itself stays a four-eyes request), on ``hold`` nothing happens.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from . import selectors, services
from .alerts import alert_raise, alert_resolve
from .reviews import review_labels_collect

logger = logging.getLogger(__name__)
SLO_RANGE = "1h"  # the dashboard range SLO breaches are judged over


def monitoring_check(*, workspace_id: Any) -> dict[str, Any]:
    """Run every check for the workspace's monitored models; returns what each found."""
    report: dict[str, Any] = {
        "slo": slo_check(workspace_id=workspace_id),
        "review_labels": review_labels_collect(workspace_id=workspace_id),
        "purged_samples": services.samples_purge(workspace_id=workspace_id),
    }
    for model_name in selectors.monitored_models(workspace_id=workspace_id):
        report[model_name] = {
            "drift": drift_alerts(workspace_id=workspace_id, model_name=model_name),
            "accuracy": accuracy_alerts(workspace_id=workspace_id, model_name=model_name),
            "canary": canary_analysis(workspace_id=workspace_id, model_name=model_name),
        }
    return report


def drift_alerts(*, workspace_id: Any, model_name: str) -> list[str]:
    """Compute this window's drift; alert on drifted features, resolve when none drift."""
    results = services.drift_check(workspace_id=workspace_id, model_name=model_name)
    drifted = sorted({f"v{r.version} {r.feature}" for r in results if r.drifted})
    key = f"drift:{model_name}"
    if drifted:
        alert_raise(
            workspace_id=workspace_id,
            key=key,
            kind="drift",
            summary=f"{model_name}: drift in {', '.join(drifted)}",
            details={"model": model_name, "drifted": drifted},
        )
    elif results:
        alert_resolve(workspace_id=workspace_id, key=key, summary=f"{model_name}: no drift")
    return drifted


def accuracy_alerts(*, workspace_id: Any, model_name: str) -> dict[str, float]:
    """Labelled accuracy per version over the window; alert below the model's minimum."""
    monitor = services.monitor_get(workspace_id=workspace_id, model_name=model_name)
    since = timezone.now() - timedelta(minutes=monitor.window_minutes)
    signals = selectors.version_signals(
        workspace_id=workspace_id, model_name=model_name, since=since
    )
    found = {}
    for version, figures in signals.items():
        if figures["accuracy"] is None or figures["labelled"] < monitor.min_window_samples:
            continue
        accuracy = round(figures["accuracy"], 4)
        found[version] = accuracy
        key = f"accuracy:{model_name}:{version}"
        if accuracy < monitor.accuracy_min:
            alert_raise(
                workspace_id=workspace_id,
                key=key,
                kind="accuracy_drop",
                summary=f"{model_name} v{version}: accuracy {accuracy} below "
                f"{monitor.accuracy_min}",
                details={"model": model_name, "version": version, "accuracy": accuracy},
            )
        else:
            alert_resolve(
                workspace_id=workspace_id,
                key=key,
                summary=f"{model_name} v{version}: accuracy {accuracy} recovered",
            )
    return found


def slo_check(*, workspace_id: Any) -> list[str]:
    """Alert on each SLO the dashboard reports breached; resolve the ones met again."""
    from apps.accounts.models import Workspace
    from apps.dashboard.rollups import materialise
    from apps.dashboard.selectors import dashboard_figures

    workspace = Workspace.objects.get(id=workspace_id)
    materialise(wait=False)  # judge what ended up to now (the rollups' task runs every 2 s)
    breached = []
    for objective in dashboard_figures(workspace=workspace, range_name=SLO_RANGE)["slo"]:
        key = f"slo:{objective['key']}"
        if objective["state"] == "breached":
            breached.append(objective["key"])
            alert_raise(
                workspace_id=workspace_id,
                key=key,
                kind="slo_breach",
                summary=f"SLO breached: {objective['label']} is {objective['measured']}"
                f"{objective['unit']} (target {objective['target']}{objective['unit']})",
                details={"objective": objective},
            )
        elif objective["state"] == "met":
            alert_resolve(
                workspace_id=workspace_id, key=key, summary=f"SLO met: {objective['label']}"
            )
    return breached


def canary_input(*, workspace_id: Any, model_name: str, aliases: dict[str, str]) -> dict:
    monitor = services.monitor_get(workspace_id=workspace_id, model_name=model_name)
    since = timezone.now() - timedelta(minutes=monitor.window_minutes)
    signals = selectors.version_signals(
        workspace_id=workspace_id, model_name=model_name, since=since
    )

    def side(version: str) -> dict[str, Any]:
        figures = signals.get(version, {"samples": 0, "labelled": 0})
        return {
            "version": version,
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()},
        }

    production = side(aliases["production"])
    canary = side(aliases["canary"])
    return {
        "model": model_name,
        "production": production,
        "canary": canary,
        # Production's calls carry the shadow (canary) answer when the flow shadows it.
        "agreement": production.pop("agreement", None),
        "shadowed": production.pop("shadowed", 0),
        "limits": {"min_samples": monitor.min_window_samples, "min_labels": 20},
    }


def canary_analysis(*, workspace_id: Any, model_name: str) -> dict[str, Any] | None:
    """Decide on the model's canary (None without one) and act on the decision."""
    from apps.accounts.models import Workspace
    from apps.mlmodels import registry
    from apps.mlmodels.services import canary_rollback
    from apps.policies.gates import CANARY_ANALYSIS, evaluate_gate

    model = registry.get_model(model_name, with_runs=False)
    if "canary" not in model.aliases or "production" not in model.aliases:
        return None
    payload = canary_input(workspace_id=workspace_id, model_name=model_name, aliases=model.aliases)
    decision = evaluate_gate(workspace_id=workspace_id, gate=CANARY_ANALYSIS, input=payload)
    action = (decision.result or {}).get("action", "hold") if not decision.error else "hold"
    reasons = list(decision.reasons)
    canary = payload["canary"]["version"]
    if action == "rollback":
        workspace = Workspace.objects.get(id=workspace_id)
        outcome = canary_rollback(
            workspace=workspace, actor=None, name=model_name, reason="; ".join(reasons)
        )
        alert_raise(
            workspace_id=workspace_id,
            key=f"canary:{model_name}:{canary}",
            kind="canary_rollback",
            summary=f"{model_name} canary v{canary} "
            + ("rolled back" if outcome.allowed else "should be rolled back (gate refused)")
            + f": {'; '.join(reasons)}",
            details={
                "model": model_name,
                "version": canary,
                "reasons": reasons,
                "rolled_back": outcome.allowed,
                "gate_reasons": outcome.reasons,
            },
        )
    elif action == "promote_request":
        alert_raise(
            workspace_id=workspace_id,
            key=f"canary-ready:{model_name}:{canary}",
            kind="canary_ready",
            summary=f"{model_name} canary v{canary} is ready: request its promotion",
            details={"model": model_name, "version": canary, "reasons": reasons},
        )
    return {"action": action, "reasons": reasons, "input": payload}
