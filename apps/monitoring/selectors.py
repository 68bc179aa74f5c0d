"""Monitoring reads: performance from labels, drift and sample series, open alerts."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from django.db.models import Avg, Count, Q
from django.utils import timezone

from .models import AlertState, DriftResult, MonitoringAlert, PredictionSample


def _window_start(moment: datetime, minutes: int) -> datetime:
    epoch = int(moment.timestamp()) // (minutes * 60) * (minutes * 60)
    return datetime.fromtimestamp(epoch, tz=moment.tzinfo)


def performance(pairs: list[tuple[str, str, float]]) -> dict[str, float]:
    """Accuracy, macro F1 and calibration error of (predicted, actual, score) triples.
    ``calibration_error``: mean gap between confidence and accuracy over 5 score bins."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import accuracy_score, f1_score

    predicted = [p for p, _, _ in pairs]
    actual = [a for _, a, _ in pairs]
    correct = [int(p == a) for p, a, _ in pairs]
    scores = [s for _, _, s in pairs]
    figures = {
        "accuracy": round(float(accuracy_score(actual, predicted)), 4),
        "f1_macro": round(float(f1_score(actual, predicted, average="macro")), 4),
        "labelled": float(len(pairs)),
    }
    if len(set(correct)) > 1:
        true_rate, confidence = calibration_curve(correct, scores, n_bins=5)
        figures["calibration_error"] = round(float(abs(true_rate - confidence).mean()), 4)
    return figures


def performance_series(
    *, workspace_id: Any, model_name: str, window_minutes: int = 60, days: int = 7
) -> list[dict[str, Any]]:
    """Per version and window, from labelled samples: accuracy, F1, calibration."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        PredictionSample.objects.filter(
            workspace_id=workspace_id, model_name=model_name, created_at__gte=since, failed=False
        )
        .exclude(actual="")
        .values_list("version", "created_at", "label", "actual", "score")
        .order_by("created_at")
    )
    groups: dict[tuple[str, datetime], list[tuple[str, str, float]]] = defaultdict(list)
    for version, created, label, actual, score in rows:
        groups[(version, _window_start(created, window_minutes))].append((label, actual, score))
    return [
        {"version": version, "window": window.isoformat(), **performance(pairs)}
        for (version, window), pairs in sorted(groups.items(), key=lambda item: item[0][1])
    ]


def version_signals(
    *, workspace_id: Any, model_name: str, since: datetime
) -> dict[str, dict[str, Any]]:
    """Live signals per version since ``since``: samples, error rate (calls the version
    refused), median latency (a version's first
    call pays for loading it: a mean would count that), mean confidence, agreement with the
    shadow answer, labelled accuracy."""
    found: dict[str, dict[str, Any]] = {}
    base = PredictionSample.objects.filter(
        workspace_id=workspace_id, model_name=model_name, created_at__gte=since
    )
    answered = Q(failed=False)
    for row in base.values("version").annotate(
        samples=Count("id"),
        failures=Count("id", filter=Q(failed=True)),
        confidence=Avg("score", filter=answered),
    ):
        found[row["version"]] = {
            "samples": row["samples"],
            "error_rate": row["failures"] / row["samples"],
            "confidence": row["confidence"],
        }
    for version, label, actual, shadow, latency in base.filter(answered).values_list(
        "version", "label", "actual", "shadow_label", "latency_ms"
    ):
        signals = found[version]
        if latency is not None:
            signals.setdefault("_latency", []).append(latency)
        if shadow:
            signals.setdefault("_shadowed", []).append(label == shadow)
        if actual:
            signals.setdefault("_labelled", []).append(label == actual)
    for signals in found.values():
        shadowed, labelled = signals.pop("_shadowed", []), signals.pop("_labelled", [])
        latencies = signals.pop("_latency", [])
        signals["latency_ms"] = median(latencies) if latencies else None
        signals["agreement"] = sum(shadowed) / len(shadowed) if shadowed else None
        signals["shadowed"] = len(shadowed)
        signals["labelled"] = len(labelled)
        signals["accuracy"] = sum(labelled) / len(labelled) if labelled else None
    return found


def drift_series(*, workspace_id: Any, model_name: str, limit: int = 500) -> list[dict[str, Any]]:
    rows = DriftResult.objects.filter(workspace_id=workspace_id, model_name=model_name).order_by(
        "-window_end", "feature"
    )[:limit]
    return [
        {
            "version": row.version,
            "window_end": row.window_end.isoformat(),
            "feature": row.feature,
            "method": row.method,
            "statistic": round(row.statistic, 4),
            "p_value": row.p_value,
            "js_distance": None if row.js_distance is None else round(row.js_distance, 4),
            "drifted": row.drifted,
            "samples": row.samples,
        }
        for row in reversed(list(rows))
    ]


def alerts_open(*, workspace_id: Any) -> list[MonitoringAlert]:
    return list(
        MonitoringAlert.objects.filter(workspace_id=workspace_id, state=AlertState.OPEN)[:50]
    )


def alerts_recent(*, workspace_id: Any, model_name: str = "") -> list[MonitoringAlert]:
    alerts = MonitoringAlert.objects.filter(workspace_id=workspace_id)
    if model_name:
        alerts = alerts.filter(details__model=model_name)
    return list(alerts[:50])


def model_is_monitored(*, workspace_id: Any, model_name: str) -> bool:
    """Whether the workspace has settings or samples for the model (else its monitoring
    URLs are a 404, like any other workspace's object)."""
    from .models import ModelMonitor

    return (
        ModelMonitor.objects.filter(workspace_id=workspace_id, model_name=model_name).exists()
        or PredictionSample.objects.filter(
            workspace_id=workspace_id, model_name=model_name
        ).exists()
    )


def monitor_list(*, workspace_id: Any) -> list[str]:
    """Every model the workspace has settings or samples for, by name."""
    from .models import ModelMonitor

    configured = ModelMonitor.objects.filter(workspace_id=workspace_id).values_list(
        "model_name", flat=True
    )
    sampled = PredictionSample.objects.filter(workspace_id=workspace_id).values_list(
        "model_name", flat=True
    )
    return sorted(set(configured) | set(sampled.distinct()))


def monitored_models(*, workspace_id: Any, days: int = 7) -> list[str]:
    since = timezone.now() - timedelta(days=days)
    return sorted(
        PredictionSample.objects.filter(workspace_id=workspace_id, created_at__gte=since)
        .values_list("model_name", flat=True)
        .distinct()
    )
