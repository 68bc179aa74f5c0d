"""REST API for flows: CRUD of drafts, validation, publishing, versions, import/export."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability, may_publish
from apps.accounts.selectors import workspace_admin_contact
from apps.core import jsonsafe
from apps.core.api import JSONParser

from . import selectors, services
from .diff import definition_diff
from .gallery import template_definition, template_list
from .models import Flow, FlowVersion
from .preflight import flow_problems

# What a refused builder asks an admin for, by what was refused.
DENIED_NEXT_STEP = {
    "publish": "publish this flow, or to change what the publishing policy objects to",
    "rollback": "roll this flow back, or to change what the publishing policy objects to",
}


def flow_error_response(
    error: services.FlowError, *, workspace: Any = None, action: str = "publish"
) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.code == "denied" and workspace is not None:
        body["next"] = workspace_admin_contact(workspace=workspace, action=DENIED_NEXT_STEP[action])
    if error.problems:
        body["problems"] = [problem.as_dict() for problem in error.problems]
    if error.reasons:
        body["reasons"] = error.reasons
    http_status = {"conflict": 409, "denied": 403}.get(error.code, 400)
    return Response({"error": body}, status=http_status)


def _last_run(flow: Flow) -> dict[str, Any] | None:
    run_id = getattr(flow, "last_run_id", None)
    if run_id is None:
        return None
    # The list's queryset annotates each flow with its last run (selectors.flow_list).
    status, created_at = getattr(flow, "last_run_status", None), getattr(flow, "last_run_at", None)
    return {"id": str(run_id), "status": status, "created_at": created_at}


def flow_summary(flow: Flow) -> dict[str, Any]:
    return {
        "id": str(flow.id),
        "slug": flow.slug,
        "name": flow.name,
        "description": flow.description,
        "status": flow.status,
        "updated_at": flow.updated_at,
        "published_version": flow.latest_version.number if flow.latest_version else None,
        "last_run": _last_run(flow),
    }


def flow_detail(flow: Flow) -> dict[str, Any]:
    return {
        **flow_summary(flow),
        "draft": {
            "definition": flow.draft_definition,
            "revision": flow.draft_revision,
            "updated_at": flow.updated_at,
        },
        "webhook_path": f"/hooks/{flow.webhook_token}",
        "webhook_signing": webhook_signing(flow),
    }


def version_summary(version: FlowVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "note": version.note,
        "digest": version.digest,
        "published_by": str(version.published_by) if version.published_by else None,
        "published_at": version.published_at,
    }


class FlowListApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    class CreateSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        definition = serializers.JSONField(required=False)
        template = serializers.CharField(required=False)

    def get(self, request, workspace_slug):
        flows = selectors.flow_list(
            workspace=request.workspace,
            search=request.query_params.get("search", ""),
            include_archived=request.query_params.get("archived") == "1",
        )
        return Response([flow_summary(flow) for flow in flows])

    def post(self, request, workspace_slug):
        if not self.has_capability(Capability.EDIT_FLOWS):
            self.permission_denied(request, message="Your role cannot create flows.")
        data = self.CreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        definition = values.get("definition")
        if values.get("template"):
            definition = template_definition(values["template"])
        name = values.get("name") or (definition or {}).get("name") or "Untitled flow"
        try:
            flow = services.flow_create(
                workspace=request.workspace, actor=request.user, name=name, definition=definition
            )
        except services.FlowError as error:
            return flow_error_response(error)
        return Response(flow_detail(flow), status=status.HTTP_201_CREATED)


class FlowDetailApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug, flow_id):
        return Response(
            flow_detail(selectors.flow_get(workspace=request.workspace, flow_id=flow_id))
        )


class FlowDraftApi(WorkspaceAPIView):
    capability = Capability.EDIT_FLOWS

    class InputSerializer(serializers.Serializer):
        definition = serializers.JSONField()
        revision = serializers.IntegerField(min_value=1)

    def put(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            saved = services.flow_draft_save(flow=flow, actor=request.user, **data.validated_data)
        except services.FlowError as error:
            return flow_error_response(error)
        return Response(
            {
                "revision": saved.flow.draft_revision,
                "problems": [problem.as_dict() for problem in saved.problems],
            }
        )


class FlowValidateApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def post(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        if not isinstance(request.data, dict):
            raise serializers.ValidationError(
                {"definition": ['send {"definition": {...}}, or nothing to check the draft']}
            )
        definition = request.data.get("definition", flow.draft_definition)
        return Response(
            {
                "problems": [
                    problem.as_dict()
                    for problem in flow_problems(
                        workspace_id=request.workspace.id, definition=definition
                    )
                ]
            }
        )


def refuse_unapproved_publish(view: WorkspaceAPIView, request: Any) -> None:
    """403 for a builder in a workspace where publishing needs an admin's approval."""
    if not may_publish(request.membership):
        view.permission_denied(
            request,
            message="This workspace needs an admin's approval to publish: request it "
            "(POST .../publish-requests/).",
        )


class FlowPublishApi(WorkspaceAPIView):
    capability = Capability.PUBLISH_FLOWS

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def post(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        refuse_unapproved_publish(self, request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            version = services.flow_publish(
                flow=flow, actor=request.user, note=data.validated_data["note"]
            )
        except services.FlowError as error:
            return flow_error_response(error, workspace=request.workspace)
        return Response(version_summary(version), status=status.HTTP_201_CREATED)


class FlowRollbackApi(WorkspaceAPIView):
    capability = Capability.PUBLISH_FLOWS

    class InputSerializer(serializers.Serializer):
        number = serializers.IntegerField(min_value=1)
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def post(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        refuse_unapproved_publish(self, request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            version = services.flow_rollback(flow=flow, actor=request.user, **data.validated_data)
        except services.FlowError as error:
            return flow_error_response(error, workspace=request.workspace, action="rollback")
        return Response(version_summary(version), status=status.HTTP_201_CREATED)


class FlowVersionListApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        return Response(
            [version_summary(version) for version in selectors.flow_version_list(flow=flow)]
        )


class FlowVersionDetailApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug, flow_id, number):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        version = selectors.flow_version_get(flow=flow, number=number)
        return Response({**version_summary(version), "definition": version.definition})


class FlowDiffApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        params = request.query_params
        if "from" not in params or "to" not in params:
            raise serializers.ValidationError(
                {"from": ["give from= and to= (a version number or 'draft')"]}
            )
        before = selectors.flow_definition_at(flow=flow, reference=params["from"])
        after = selectors.flow_definition_at(flow=flow, reference=params["to"])
        return Response(definition_diff(before, after))


class FlowDuplicateApi(WorkspaceAPIView):
    capability = Capability.EDIT_FLOWS

    def post(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        copy = services.flow_duplicate(flow=flow, actor=request.user)
        return Response(flow_detail(copy), status=status.HTTP_201_CREATED)


class FlowArchiveApi(WorkspaceAPIView):
    capability = Capability.EDIT_FLOWS

    def post(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        return Response(flow_summary(services.flow_archive(flow=flow, actor=request.user)))


def webhook_signing(flow: Flow) -> dict[str, Any]:
    return {
        "signing_secret_set": bool(flow.webhook_signing_secret),
        "rotated_at": flow.webhook_secret_rotated_at,
    }


class FlowWebhookSecretApi(WorkspaceAPIView):
    """GET: whether the flow has a webhook signing secret. POST (admins): generate or rotate
    it; the answer holds the secret, which is never shown again."""

    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        return Response(webhook_signing(flow))

    def post(self, request, workspace_slug, flow_id):
        if not self.has_capability(Capability.MANAGE_SETTINGS):
            self.permission_denied(request, message="Only an admin can rotate a signing secret.")
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        secret = services.flow_webhook_secret_rotate(flow=flow, actor=request.user)
        response = Response({**webhook_signing(flow), "secret": secret}, status=201)
        response["Cache-Control"] = "no-store"
        return response


class FlowExportApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug, flow_id):
        flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
        number = request.query_params.get("version")
        try:
            document = services.flow_export(flow=flow, number=int(number) if number else None)
        except (ValueError, services.FlowError) as error:
            raise serializers.ValidationError({"version": [str(error)]}) from None
        response = HttpResponse(
            json.dumps(document, indent=2) + "\n", content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="{flow.slug}.flow.json"'
        return response


class FlowImportApi(WorkspaceAPIView):
    capability = Capability.EDIT_FLOWS
    parser_classes = [JSONParser, MultiPartParser]

    def post(self, request, workspace_slug):
        document = self._document(request)
        try:
            flow = services.flow_import(
                workspace=request.workspace, actor=request.user, document=document
            )
        except services.FlowError as error:
            return flow_error_response(error)
        return Response(flow_detail(flow), status=status.HTTP_201_CREATED)

    @staticmethod
    def _document(request) -> Any:
        upload = request.FILES.get("file")
        if upload is None:
            return request.data
        try:
            return jsonsafe.loads(upload.read(5 * 1024 * 1024))
        except jsonsafe.UnstorableJSON as error:
            raise serializers.ValidationError({"file": [f"cannot be imported: {error}"]}) from None


class TemplateListApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    def get(self, request, workspace_slug):
        return Response(template_list())
