"""REST API of the dashboard: every figure of one workspace over a time range, as JSON (the
dashboard's charts draw from it and refresh it live), and the workspace's SLO targets."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability

from . import rollups, selectors, services
from .forms import RangeForm
from .models import SloTargets
from .slo import OBJECTIVES


class DashboardApi(WorkspaceAPIView):
    """Runs by status (totals and a series of buckets), step latency per block type, error
    and retry rates, model and policy latency, queue depth and lag, inbox backlog, estimated
    model cost per 1,000 inferences and each SLO's state, over ``range``."""

    capability = Capability.VIEW_RUNS

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "range",
                str,
                enum=selectors.RANGE_NAMES,
                description="today (since local midnight, the default), 1h, 24h or 7d",
            )
        ]
    )
    def get(self, request, workspace_slug):
        form = RangeForm(request.query_params)
        if not form.is_valid():
            raise serializers.ValidationError(form.errors.get_json_data(escape_html=False))
        rollups.materialise(wait=False)  # what a caller reads is counted (the task: every 2 s)
        figures = selectors.dashboard_figures(
            workspace=request.workspace, range_name=form.range_name()
        )
        minutes = selectors.BUCKET_MINUTES[figures["range"]]
        figures["series"] = {
            "bucket_minutes": minutes,
            "runs": selectors.runs_over_time(
                workspace=request.workspace, since=figures["since"], minutes=minutes
            ),
        }
        return Response(figures)


class SloTargetsSerializer(serializers.ModelSerializer):
    """Every target, each bounded by the model's validators (as the settings form is); a
    PUT replaces them all, so each is required."""

    class Meta:
        model = SloTargets
        fields = [objective.key for objective in OBJECTIVES]
        extra_kwargs = {objective.key: {"required": True} for objective in OBJECTIVES}


def slo_targets_data(targets: SloTargets) -> dict:
    return {**SloTargetsSerializer(targets).data, "updated_at": targets.updated_at}


class SloTargetsApi(WorkspaceAPIView):
    """The workspace's SLO targets (the defaults until an admin saves them). ``PUT``
    replaces all of them, admins only; the change is audited."""

    capability = Capability.VIEW_RUNS
    request_serializer = {"PUT": SloTargetsSerializer}

    def get(self, request, workspace_slug):
        return Response(slo_targets_data(selectors.slo_targets_get(workspace=request.workspace)))

    def put(self, request, workspace_slug):
        if not self.has_capability(Capability.MANAGE_SETTINGS):
            self.permission_denied(request, message="Only admins change SLO targets.")
        data = SloTargetsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        saved = services.slo_targets_save(
            workspace=request.workspace, actor=request.user, targets=data.validated_data
        )
        return Response(slo_targets_data(saved))
