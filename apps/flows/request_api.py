"""REST API for publish requests (a builder asks; an admin approves or rejects)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import serializers
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability, may_publish, may_request_publish

from . import selectors
from .api import flow_error_response
from .models import PublishRequest
from .publish_requests import publish_request_create, publish_request_decide, publish_request_diff
from .services import FlowError


def request_data(pr: PublishRequest) -> dict[str, Any]:
    return {
        "id": str(pr.id),
        "flow": {"id": str(pr.flow_id), "name": pr.flow.name},
        "rollback_to": pr.rollback_to,
        "note": pr.note,
        "status": pr.status,
        "gate": pr.gate,
        "diff": publish_request_diff(pr),
        "requested_by": pr.requested_by.username if pr.requested_by else None,
        "decided_by": pr.decided_by.username if pr.decided_by else None,
        "comment": pr.comment,
        "version": pr.version.number if pr.version else None,
        "created_at": pr.created_at,
    }


class RequestCreateSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    rollback_to = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None
    )


class PublishRequestListApi(WorkspaceAPIView):
    """GET: requests waiting for an admin. POST (builders in a workspace that requires
    approval): ask for the flow's draft, or version ``rollback_to``, to be published."""

    capability = Capability.VIEW_FLOWS
    request_serializer = {"POST": RequestCreateSerializer}

    def get(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        pending = [
            pr
            for pr in selectors.pending_publish_requests(workspace=request.workspace)
            if pr.flow_id == flow.id
        ]
        return Response({"results": [request_data(pr) for pr in pending]})

    def post(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        if not may_request_publish(request.membership):
            self.permission_denied(request, message="Admins publish flows themselves.")
        body = RequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            pr = publish_request_create(flow=flow, actor=request.user, **body.validated_data)
        except FlowError as error:
            return flow_error_response(error)
        return Response(request_data(pr), status=201)


class PublishDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class PublishRequestDecideApi(WorkspaceAPIView):
    """Approve (publishes what was asked, through the gate) or reject (comment required)."""

    capability = Capability.PUBLISH_FLOWS
    request_serializer = PublishDecisionSerializer

    def post(self, request, workspace_slug, flow_id, request_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        pr = PublishRequest.objects.filter(flow=flow, pk=request_id).first()
        if pr is None:
            raise Http404("No such publish request.")
        if not may_publish(request.membership):
            self.permission_denied(request, message="Only an admin decides publish requests.")
        body = PublishDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            pr = publish_request_decide(
                request=pr,
                actor=request.user,
                approve=body.validated_data["decision"] == "approve",
                comment=body.validated_data["comment"],
            )
        except FlowError as error:
            return flow_error_response(error)
        return Response(request_data(pr))
