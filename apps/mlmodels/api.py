"""REST API for promotion requests: list and request (``/models/promotions/``), read one,
approve or reject it. A different admin than the requester decides; approving runs the
``model_promotion`` gate and, when it allows, moves the alias in MLflow."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability

from . import registry, selectors, services
from .blocks import NAME_PATTERN
from .models import PromotionRequest, PromotionStatus


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def promotion_detail(promotion: PromotionRequest) -> dict[str, Any]:
    return {
        "id": str(promotion.id),
        "model": promotion.model_name,
        "version": promotion.version,
        "alias": promotion.alias,
        "canary_share": promotion.canary_share,
        "note": promotion.note,
        "status": promotion.status,
        "requested_by": _username(promotion.requested_by),
        "created_at": promotion.created_at,
        "decided_by": _username(promotion.decided_by),
        "decided_at": promotion.decided_at,
        "decision_note": promotion.decision_note,
        "reasons": promotion.reasons,
        "previous_version": promotion.previous_version,
    }


def promotion_error(error: services.PromotionError) -> Response:
    code = {400: "invalid", 403: "permission_denied", 404: "not_found"}.get(
        error.status, "conflict"
    )
    return Response({"error": {"code": code, "message": error.message}}, status=error.status)


class PromotionListApi(WorkspaceAPIView):
    """Promotion requests, newest first (``?status=pending`` for the waiting ones); POST
    requests one (admins): ``alias`` production or canary, ``canary_share`` 0-100 for canary."""

    capability = Capability.VIEW_MODELS

    class PromotionCreateSerializer(serializers.Serializer):
        model = serializers.RegexField(NAME_PATTERN, max_length=200)
        version = serializers.RegexField(r"^[0-9]+$", max_length=20)
        alias = serializers.ChoiceField(choices=registry.ALIASES)
        canary_share = serializers.IntegerField(
            min_value=0, max_value=100, required=False, allow_null=True, default=None
        )
        note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    request_serializer = PromotionCreateSerializer

    def get(self, request, workspace_slug):
        wanted = request.query_params.get("status", "")
        requests = selectors.promotion_requests(
            workspace=request.workspace, pending_only=wanted == PromotionStatus.PENDING
        )
        return Response({"results": [promotion_detail(item) for item in requests[:100]]})

    def post(self, request, workspace_slug):
        if not self.has_capability(Capability.MANAGE_MODELS):
            self.permission_denied(request, message="Only admins request model promotions.")
        data = self.PromotionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            promotion = services.promotion_request_create(
                workspace=request.workspace,
                actor=request.user,
                name=values["model"],
                version=values["version"],
                alias=values["alias"],
                canary_share=values["canary_share"],
                note=values["note"],
            )
        except services.PromotionError as error:
            return promotion_error(error)
        return Response(promotion_detail(promotion), status=status.HTTP_201_CREATED)


class PromotionDetailApi(WorkspaceAPIView):
    capability = Capability.VIEW_MODELS

    def get(self, request, workspace_slug, promotion_id):
        return Response(
            promotion_detail(
                selectors.promotion_get(workspace=request.workspace, promotion_id=promotion_id)
            )
        )


class PromotionDecisionSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class PromotionDecideApi(WorkspaceAPIView):
    """Approve (the gate decides; 200 with ``status`` approved or denied and its reasons) or
    reject. 403 for the requester, 409 when already decided, 503 when MLflow is down."""

    capability = Capability.MANAGE_MODELS
    request_serializer = PromotionDecisionSerializer
    action = "approve"

    def post(self, request, workspace_slug, promotion_id):
        promotion = selectors.promotion_get(workspace=request.workspace, promotion_id=promotion_id)
        body = PromotionDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        act = services.promotion_approve if self.action == "approve" else services.promotion_reject
        try:
            promotion = act(
                workspace=request.workspace,
                promotion_id=promotion.id,
                actor=request.user,
                note=body.validated_data["note"],
            )
        except services.PromotionError as error:
            return promotion_error(error)
        except registry.RegistryUnavailable as error:
            return Response(
                {"error": {"code": "unavailable", "message": str(error)}},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(promotion_detail(promotion))


class AgentToolCatalogApi(WorkspaceAPIView):
    """What an ``ai.agent`` node may call here, for the editor's tool picker:
    ``{"flows": [...], "blocks": [...]}`` (``selectors.agent_tool_catalog``)."""

    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug):
        return Response(selectors.agent_tool_catalog(workspace=request.workspace))
