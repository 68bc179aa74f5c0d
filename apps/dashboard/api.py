"""REST API of the dashboard: every figure of one workspace over a time range, as JSON (the
dashboard's charts draw from it and refresh it live)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability

from . import selectors
from .forms import RangeForm


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
    def get(self, request, workspace_slug):  # type: ignore[no-untyped-def]
        form = RangeForm(request.query_params)
        if not form.is_valid():
            raise serializers.ValidationError(form.errors.get_json_data(escape_html=False))
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
