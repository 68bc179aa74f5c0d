"""REST API for connections. Secrets are write-only: requests may set them, responses only
say which are set. Members who build flows may list connections (to pick one in a block);
only admins (``MANAGE_SETTINGS``) see settings or change anything."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability
from apps.core.egress import MAX_ALLOWLIST_ENTRIES

from . import selectors, services
from .models import Connection


def connection_summary(connection: Connection) -> dict[str, Any]:
    return {
        "id": str(connection.pk),
        "name": connection.name,
        "type": connection.type,
        "description": connection.description,
    }


def connection_detail(connection: Connection) -> dict[str, Any]:
    return {
        **connection_summary(connection),
        "config": connection.config,
        "secrets_set": services.connection_secret_names(connection),
        "last_test": {
            "ok": connection.last_test_ok,
            "message": connection.last_test_message,
            "at": connection.last_tested_at,
        },
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
    }


def invalid_response(error: services.ConnectionInvalid) -> Response:
    return Response(
        {"error": {"code": "invalid", "message": error.message, "fields": error.fields}},
        status=status.HTTP_400_BAD_REQUEST,
    )


class ConnectionListApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS

    class CreateSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=80)
        type = serializers.CharField(max_length=40)
        description = serializers.CharField(max_length=300, required=False, allow_blank=True)
        config = serializers.DictField(required=False, default=dict)
        secrets = serializers.DictField(
            child=serializers.CharField(allow_blank=True), required=False, default=dict
        )

    request_serializer = CreateSerializer

    def get(self, request, workspace_slug):
        connections = selectors.connection_list(workspace=request.workspace)
        if self.has_capability(Capability.MANAGE_SETTINGS):
            return Response([connection_detail(item) for item in connections])
        return Response([connection_summary(item) for item in connections])

    def post(self, request, workspace_slug):
        if not self.has_capability(Capability.MANAGE_SETTINGS):
            self.permission_denied(request, message="Only admins manage connections.")
        data = self.CreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            connection = services.connection_create(
                workspace=request.workspace, actor=request.user, **data.validated_data
            )
        except services.ConnectionInvalid as error:
            return invalid_response(error)
        return Response(connection_detail(connection), status=status.HTTP_201_CREATED)


class ConnectionDetailApi(WorkspaceAPIView):
    capability = Capability.MANAGE_SETTINGS

    class UpdateSerializer(serializers.Serializer):
        description = serializers.CharField(max_length=300, required=False, allow_blank=True)
        config = serializers.DictField(required=False)
        secrets = serializers.DictField(
            child=serializers.CharField(allow_blank=True), required=False
        )
        clear_secrets = serializers.ListField(child=serializers.CharField(), required=False)

    request_serializer = {"PATCH": UpdateSerializer}

    def get(self, request, workspace_slug, connection_id):
        connection = selectors.connection_get(
            workspace=request.workspace, connection_id=connection_id
        )
        return Response(connection_detail(connection))

    def patch(self, request, workspace_slug, connection_id):
        connection = selectors.connection_get(
            workspace=request.workspace, connection_id=connection_id
        )
        data = self.UpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["clear_secrets"] = tuple(values.get("clear_secrets", ()))
        try:
            services.connection_update(connection=connection, actor=request.user, **values)
        except services.ConnectionInvalid as error:
            return invalid_response(error)
        return Response(connection_detail(connection))

    def delete(self, request, workspace_slug, connection_id):
        connection = selectors.connection_get(
            workspace=request.workspace, connection_id=connection_id
        )
        services.connection_delete(connection=connection, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConnectionTestApi(WorkspaceAPIView):
    capability = Capability.MANAGE_SETTINGS

    def post(self, request, workspace_slug, connection_id):
        connection = selectors.connection_get(
            workspace=request.workspace, connection_id=connection_id
        )
        outcome = services.connection_test(connection=connection)
        return Response(
            {"ok": outcome.ok, "stage": outcome.stage, "message": outcome.message},
            status=outcome.http_status,
        )


class EgressSettingsApi(WorkspaceAPIView):
    """The workspace's egress allow-list (Settings → Egress), besides the environment's
    ``SSRF_ALLOWLIST``. ``PUT {"allowlist": [...]}`` replaces it, audited; admins only."""

    capability = Capability.MANAGE_SETTINGS

    class InputSerializer(serializers.Serializer):
        allowlist = serializers.ListField(
            child=serializers.CharField(max_length=253), max_length=MAX_ALLOWLIST_ENTRIES
        )

    request_serializer = {"PUT": InputSerializer}

    def get(self, request, workspace_slug):
        current = selectors.egress_settings_get(workspace_id=request.workspace.id)
        return Response(egress_settings_data(current))

    def put(self, request, workspace_slug):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            saved = services.egress_settings_save(
                workspace=request.workspace,
                actor=request.user,
                allowlist=data.validated_data["allowlist"],
            )
        except services.ConnectionInvalid as error:
            return invalid_response(error)
        return Response(egress_settings_data(saved))


def egress_settings_data(current: Any) -> dict[str, Any]:
    return {
        "allowlist": list(current.allowlist),
        "environment_allowlist": settings.FLOWGATE["SSRF_ALLOWLIST"],
        "updated_at": current.updated_at,
    }
