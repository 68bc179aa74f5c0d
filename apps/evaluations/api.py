"""REST API: a flow's evaluation cases, starting a comparison and reading its report."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability
from apps.flows.selectors import flow_get

from . import selectors, services
from .models import EvalCase, Evaluation


class CaseSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    input = serializers.JSONField(required=False, default=dict)
    expected = serializers.JSONField(required=False, default=dict)


class ComparisonSerializer(serializers.Serializer):
    baseline = serializers.CharField(max_length=40, default="published")
    candidate = serializers.CharField(max_length=40, default="draft")


def case_data(case: EvalCase) -> dict[str, Any]:
    return {"id": str(case.id), "name": case.name, "input": case.input, "expected": case.expected}


def evaluation_data(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": str(evaluation.id),
        "baseline": evaluation.baseline,
        "candidate": evaluation.candidate,
        "created_at": evaluation.created_at,
        "requested_by": evaluation.requested_by.username if evaluation.requested_by else None,
    }


def _error(error: services.EvaluationError) -> Response:
    return Response({"error": {"message": error.message, "field": error.field}}, status=400)


class EvalCaseListApi(WorkspaceAPIView):
    """GET: the flow's cases. POST (builders, admins): add one."""

    capability = Capability.VIEW_FLOWS
    request_serializer = CaseSerializer

    def get(self, request, workspace_slug, flow_id):
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        return Response([case_data(case) for case in selectors.eval_case_list(flow=flow)])

    def post(self, request, workspace_slug, flow_id):
        if not self.has_capability(Capability.EDIT_FLOWS):
            self.permission_denied(request, message="Your role cannot change evaluation cases.")
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        body = CaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            case = services.eval_case_save(flow=flow, actor=request.user, **body.validated_data)
        except services.EvaluationError as error:
            return _error(error)
        return Response(case_data(case), status=status.HTTP_201_CREATED)


class EvalCaseApi(WorkspaceAPIView):
    capability = Capability.EDIT_FLOWS

    def delete(self, request, workspace_slug, flow_id, case_id):
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        case = selectors.eval_case_get(flow=flow, case_id=case_id)
        services.eval_case_delete(case=case, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EvaluationListApi(WorkspaceAPIView):
    """GET: the flow's recent evaluations. POST (builders, admins): compare ``baseline``
    and ``candidate`` (``draft``, ``published`` or ``vN``) on every case; 201 with the
    report as it stands (poll the evaluation until ``finished``)."""

    capability = Capability.VIEW_FLOWS
    request_serializer = ComparisonSerializer

    def get(self, request, workspace_slug, flow_id):
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        return Response([evaluation_data(item) for item in selectors.evaluation_list(flow=flow)])

    def post(self, request, workspace_slug, flow_id):
        if not self.has_capability(Capability.EDIT_FLOWS):
            self.permission_denied(request, message="Your role cannot run evaluations.")
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        body = ComparisonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            evaluation = services.evaluation_start(
                flow=flow, actor=request.user, **body.validated_data
            )
        except services.EvaluationError as error:
            return _error(error)
        report = selectors.evaluation_report(evaluation=evaluation)
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)


class EvaluationApi(WorkspaceAPIView):
    """The evaluation's report: per side pass rate, cost, tokens, step time; a verdict per
    case (``passed`` null while its run is still going)."""

    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug, flow_id, evaluation_id):
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        evaluation = selectors.evaluation_get(flow=flow, evaluation_id=evaluation_id)
        return Response(selectors.evaluation_report(evaluation=evaluation).as_dict())
