"""REST API: post ground-truth labels (one or a batch; an API token makes it a webhook a
connector can call), read a model's performance and drift series, acknowledge an alert."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.models import ApiToken
from apps.accounts.permissions import Capability
from apps.mlmodels.blocks import NAME_PATTERN

from . import alerts, selectors, services
from .models import ModelMonitor


class LabelSerializer(serializers.Serializer):
    run_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    step_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    business_key = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    # Shadows Field.label for the type checker only: DRF collects declared fields.
    label = serializers.CharField(max_length=200)  # type: ignore[assignment]


class LabelBatchSerializer(serializers.Serializer):
    labels = serializers.ListField(child=LabelSerializer(), allow_empty=False, max_length=1000)


class LabelApi(WorkspaceAPIView):
    """POST ``{"run_id", "step_id", "label"}`` or ``{"business_key", "label"}``, or
    ``{"labels": [...]}`` for many: each answer says how many sampled predictions it
    labelled, or why none (404 when a single label matches nothing)."""

    capability = Capability.START_RUNS
    request_serializer = LabelBatchSerializer

    def post(self, request, workspace_slug):
        batch = "labels" in request.data
        body = (LabelBatchSerializer if batch else LabelSerializer)(data=request.data)
        body.is_valid(raise_exception=True)
        items = body.validated_data["labels"] if batch else [body.validated_data]
        source = "webhook" if isinstance(request.auth, ApiToken) else "api"
        answers: list[dict[str, Any]] = []
        for item in items:
            try:
                labelled = services.label_record(
                    workspace_id=request.workspace.id,
                    label=item["label"],
                    source=source,
                    run_id=item["run_id"],
                    node_id=item["step_id"],
                    business_key=item["business_key"],
                )
                answers.append({"labelled": labelled})
            except services.LabelError as error:
                if not batch:
                    return Response({"error": {"message": error.message}}, status=error.status)
                answers.append({"labelled": 0, "error": error.message})
        return Response(answers if batch else answers[0], status=status.HTTP_201_CREATED)


class MonitorSettingsSerializer(serializers.Serializer):
    sample_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    window_minutes = serializers.IntegerField(min_value=5, max_value=7 * 24 * 60, required=False)
    drift_p_value = serializers.FloatField(min_value=1e-9, max_value=0.5, required=False)
    min_window_samples = serializers.IntegerField(min_value=5, max_value=100_000, required=False)
    accuracy_min = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    alert_connections = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=10, required=False
    )
    alert_recipients = serializers.ListField(
        child=serializers.EmailField(), max_length=50, required=False
    )
    review_labels = serializers.DictField(
        child=serializers.CharField(max_length=200), required=False
    )


SETTINGS_FIELDS: tuple[str, ...] = tuple(MonitorSettingsSerializer().get_fields())


def monitor_detail(monitor: ModelMonitor) -> dict:
    return {name: getattr(monitor, name) for name in SETTINGS_FIELDS}


class MonitorCreateSerializer(MonitorSettingsSerializer):
    model_name = serializers.RegexField(NAME_PATTERN, max_length=200)


def _save_settings(view: WorkspaceAPIView, request: Any, model_name: str, values: dict) -> Any:
    if not view.has_capability(Capability.MANAGE_MODELS):
        view.permission_denied(request, message="Only admins change model monitoring.")
    try:
        return services.monitor_save(
            workspace=request.workspace, actor=request.user, model_name=model_name, **values
        )
    except services.SettingsError as error:
        raise serializers.ValidationError({error.field: [error.message]}) from None


class ModelMonitorListApi(WorkspaceAPIView):
    """GET: the models this workspace monitors (settings or samples), each with its
    settings. POST (admins): set a model's monitoring before its first sample."""

    capability = Capability.VIEW_MODELS
    request_serializer = MonitorCreateSerializer

    def get(self, request, workspace_slug):
        workspace_id = request.workspace.id
        names = selectors.monitor_list(workspace_id=workspace_id)
        return Response(
            {
                "results": [
                    {
                        "model": name,
                        **monitor_detail(
                            services.monitor_get(workspace_id=workspace_id, model_name=name)
                        ),
                    }
                    for name in names
                ]
            }
        )

    def post(self, request, workspace_slug):
        body = MonitorCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        monitor = _save_settings(self, request, values.pop("model_name"), values)
        return Response(monitor_detail(monitor), status=status.HTTP_201_CREATED)


class ModelMonitoringApi(WorkspaceAPIView):
    """GET: a model's monitoring settings, accuracy / F1 / calibration per version and
    window, and its drift tests. PUT (admins): change the settings (sampling rate, window,
    thresholds, alert channels, review label mapping); fields left out keep their value.
    A model this workspace neither configured nor sampled is a 404."""

    capability = Capability.VIEW_MODELS
    request_serializer = MonitorSettingsSerializer

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not selectors.model_is_monitored(
            workspace_id=request.workspace.id, model_name=kwargs["model_name"]
        ):
            raise Http404("This workspace does not monitor that model.")

    def put(self, request, workspace_slug, model_name):
        body = MonitorSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        monitor = _save_settings(self, request, model_name, dict(body.validated_data))
        return Response(monitor_detail(monitor))

    def get(self, request, workspace_slug, model_name):
        workspace_id = request.workspace.id
        monitor = services.monitor_get(workspace_id=workspace_id, model_name=model_name)
        return Response(
            {
                "model": model_name,
                "settings": monitor_detail(monitor),
                "performance": selectors.performance_series(
                    workspace_id=workspace_id,
                    model_name=model_name,
                    window_minutes=monitor.window_minutes,
                ),
                "drift": selectors.drift_series(workspace_id=workspace_id, model_name=model_name),
            }
        )


class AlertAcknowledgeApi(WorkspaceAPIView):
    capability = Capability.MANAGE_MODELS

    def post(self, request, workspace_slug, alert_id):
        try:
            alert = alerts.alert_acknowledge(
                workspace=request.workspace, alert_id=alert_id, actor=request.user
            )
        except alerts.AlertError as error:
            return Response({"error": {"message": error.message}}, status=error.status)
        return Response({"id": str(alert.id), "acknowledged_at": alert.acknowledged_at})
