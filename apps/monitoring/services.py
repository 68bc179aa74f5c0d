"""Monitoring writes: model settings, drift results, ground-truth labels.

``monitoring_check`` (the beat task's body) runs drift, performance and canary analysis
for every monitored model of a workspace and raises or resolves alerts accordingly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record

from . import drift
from .models import DriftResult, ModelMonitor, PredictionSample
from .sampling import business_key_digest, forget_sample_rate

LABEL_SOURCES = ("api", "webhook", "review")
_profiles: dict[tuple[str, str], dict[str, Any] | None] = {}


class LabelError(Exception):
    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def monitor_get(*, workspace_id: Any, model_name: str) -> ModelMonitor:
    """The model's settings, or the defaults (unsaved) when nobody set any."""
    found = ModelMonitor.objects.filter(workspace_id=workspace_id, model_name=model_name).first()
    return found or ModelMonitor(workspace_id=workspace_id, model_name=model_name)


class SettingsError(Exception):
    """A monitoring setting that cannot be saved (a 400 or 422 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


ALERT_CHANNEL_TYPES = ("smtp", "webhook")


def alert_channels(*, workspace: Any) -> list[str]:
    """Names of the workspace's connections alerts can be sent through."""
    from apps.connectors.selectors import connection_list

    return sorted(
        connection_list(workspace=workspace)
        .filter(type__in=ALERT_CHANNEL_TYPES)
        .values_list("name", flat=True)
    )


def monitor_save(*, workspace: Any, actor: Any, model_name: str, **values: Any) -> ModelMonitor:
    """Create or change a model's monitoring settings (audited, before → after). Raises
    ``SettingsError`` for a sampling rate outside 0 to 1 or an alert channel that is not one of
    the workspace's SMTP or webhook connections."""
    if "sample_rate" in values and not 0 <= float(values["sample_rate"]) <= 1:
        raise SettingsError("sample_rate", "sample_rate must be between 0 and 1")
    unknown = sorted(
        set(values.get("alert_connections") or ()) - set(alert_channels(workspace=workspace))
    )
    if unknown:
        raise SettingsError(
            "alert_connections",
            f"no SMTP or webhook connection named {', '.join(unknown)} in this workspace",
        )
    with transaction.atomic():
        current = monitor_get(workspace_id=workspace.id, model_name=model_name)
        before = {key: getattr(current, key) for key in values}
        monitor, _ = ModelMonitor.objects.update_or_create(
            workspace=workspace, model_name=model_name, defaults=values
        )
        audit_record(
            workspace_id=workspace.id,
            action="monitoring.settings_changed",
            actor=actor,
            object_type="model",
            object_id=model_name,
            summary=f"monitoring settings of {model_name} changed",
            data={"before": before, "after": dict(values)},
        )
    forget_sample_rate(workspace.id, model_name)
    return monitor


def reference_for(model_name: str, version: str) -> dict[str, Any] | None:
    """The version's training profile from MLflow, read once per process (immutable)."""
    from apps.mlmodels import registry

    key = (model_name, version)
    if key not in _profiles:
        _profiles[key] = registry.reference_profile(model_name, version)
    return _profiles[key]


def window_samples(
    *, workspace_id: Any, model_name: str, start: datetime, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The sampled answers (features, label, score) from ``start`` to ``end`` per version."""
    rows = PredictionSample.objects.filter(
        workspace_id=workspace_id,
        model_name=model_name,
        created_at__gt=start,
        created_at__lte=end,
        failed=False,
        sampled=True,
    ).values("version", "inputs", "label", "score")
    by_version: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_version.setdefault(row["version"], []).append(dict(row))
    return by_version


def window_distributions(
    *, workspace_id: Any, model_name: str, window_minutes: int
) -> list[dict[str, Any]]:
    """Per version sampled in the model's last window: each field's distribution beside
    the training reference logged with that version (none without a profile)."""
    end = timezone.now()
    by_version = window_samples(
        workspace_id=workspace_id,
        model_name=model_name,
        start=end - timedelta(minutes=window_minutes),
        end=end,
    )
    found = []
    for version, samples in sorted(by_version.items()):
        profile = reference_for(model_name, version)
        if profile is not None:
            for field in drift.window_distributions(profile, samples):
                found.append({"version": version, **field})
    return found


def drift_check(
    *, workspace_id: Any, model_name: str, now: datetime | None = None
) -> list[DriftResult]:
    """Test each version sampled in the model's last window against its training profile
    and store the results. A version with fewer samples than ``min_window_samples`` or no
    profile is skipped. Raises ``registry.RegistryUnavailable`` when MLflow is down."""
    monitor = monitor_get(workspace_id=workspace_id, model_name=model_name)
    end = now or timezone.now()
    by_version = window_samples(
        workspace_id=workspace_id,
        model_name=model_name,
        start=end - timedelta(minutes=monitor.window_minutes),
        end=end,
    )
    results = []
    for version, samples in sorted(by_version.items()):
        profile = reference_for(model_name, version)
        if profile is None or len(samples) < monitor.min_window_samples:
            continue
        for found in drift.window_drift(profile, samples):
            results.append(
                DriftResult(
                    workspace_id=workspace_id,
                    model_name=model_name,
                    version=version,
                    window_end=end,
                    feature=found.feature,
                    method=found.method,
                    statistic=found.statistic,
                    p_value=found.p_value,
                    js_distance=found.js_distance,
                    drifted=found.p_value < monitor.drift_p_value,
                    samples=found.samples,
                )
            )
    return DriftResult.objects.bulk_create(results)


def samples_purge(*, workspace_id: Any, now: datetime | None = None) -> int:
    """Delete samples and drift results older than the workspace's retention (Settings →
    Data, as for runs); returns how many samples went."""
    from apps.audit.selectors import data_settings_get

    days = data_settings_get(workspace_id=workspace_id).retention_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    DriftResult.objects.filter(workspace_id=workspace_id, window_end__lt=cutoff).delete()
    deleted, _ = PredictionSample.objects.filter(
        workspace_id=workspace_id, created_at__lt=cutoff
    ).delete()
    return deleted


def label_record(
    *,
    workspace_id: Any,
    label: str,
    source: str,
    run_id: Any = None,
    node_id: str = "",
    business_key: str = "",
) -> int:
    """Attach a ground-truth ``label`` to the recorded prediction(s) of one case, named by
    run and step (node) id or by business key. Returns how many samples it labelled;
    raises ``LabelError`` (404) when no recorded prediction matches (every ``model.predict``
    step is recorded, sampled or not)."""
    if source not in LABEL_SOURCES:
        raise LabelError(f"unknown label source {source!r}")
    if not str(label).strip():
        raise LabelError("the label is empty")
    matching = PredictionSample.objects.filter(workspace_id=workspace_id, failed=False)
    if run_id:
        matching = matching.filter(run_id=run_id)
        if node_id:
            matching = matching.filter(node_id=node_id)
    elif business_key:
        matching = matching.filter(business_key=business_key_digest(business_key))
    else:
        raise LabelError("name the case by run (and step) id or by business key")
    updated = matching.update(
        actual=str(label)[:200], label_source=source, labelled_at=timezone.now()
    )
    if not updated:
        raise LabelError("no recorded prediction matches this case", status=404)
    return updated
