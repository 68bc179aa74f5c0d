"""REST API for policies as code: list, export and import documents, run their tests."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability

from . import as_code, selectors
from .services import PolicyValidationError


def _refused(error: PolicyValidationError) -> Response:
    body = {"code": "invalid", "message": error.message, "errors": [str(e) for e in error.errors]}
    return Response({"error": body}, status=400)


class ImportSerializer(serializers.Serializer):
    document = serializers.DictField()
    publish = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class PolicyListApi(WorkspaceAPIView):
    """GET: the workspace's policies with their live version. POST (admins): load a
    ``flowgate/policy@1`` document, creating the policy when its slug is new; with
    ``publish`` it is published too (it must compile and pass its tests, else 400 and
    nothing of the import is kept)."""

    capability = Capability.VIEW_POLICIES
    request_serializer = {"POST": ImportSerializer}

    def get(self, request, workspace_slug):
        rows = []
        for policy in selectors.policy_list(workspace=request.workspace):
            latest = selectors.policy_latest_version(policy=policy)
            rows.append(
                {
                    "slug": policy.slug,
                    "name": policy.name,
                    "gate": policy.gate or None,
                    "version": latest.number if latest else None,
                }
            )
        return Response({"results": rows})

    def post(self, request, workspace_slug):
        if not self.has_capability(Capability.MANAGE_POLICIES):
            self.permission_denied(request, message="Only admins change policies.")
        body = ImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        document = body.validated_data["document"]
        try:
            imported = as_code.policy_import(
                workspace=request.workspace,
                actor=request.user,
                document=document,
                publish=body.validated_data["publish"],
                note=body.validated_data["note"],
            )
        except PolicyValidationError as error:
            return _refused(error)
        return Response(
            {
                **as_code.policy_document(imported.policy),
                "created": imported.created,
                "published": imported.version.number if imported.version else None,
            },
            status=201 if imported.created else 200,
        )


class PolicyDocumentApi(WorkspaceAPIView):
    """The policy as a ``flowgate/policy@1`` document (draft, tests, versions)."""

    capability = Capability.VIEW_POLICIES

    def get(self, request, workspace_slug, policy_slug):
        policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
        return Response(as_code.policy_document(policy))


class PolicyTestApi(WorkspaceAPIView):
    """Run the policy's tests on its draft: ``passed`` and each test's result."""

    capability = Capability.VIEW_POLICIES

    def post(self, request, workspace_slug, policy_slug):
        policy = selectors.policy_get(workspace=request.workspace, slug=policy_slug)
        return Response(as_code.policy_test_report(policy))
