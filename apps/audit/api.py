"""REST API for the audit trail: list with filters (paginated), and chain verification."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability
from apps.core.api import Pagination

from . import selectors, services
from .forms import FIELD_NAME, MAX_SENSITIVE_FIELDS, AuditFilterForm
from .models import AuditEvent
from .redaction import redact, sensitive_keys_for_workspace


def event_data(event: AuditEvent, sensitive: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "sequence": event.sequence,
        "created_at": event.created_at,
        "actor": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "summary": event.summary,
        "data": redact(event.data, extra_keys=sensitive),
        "previous_digest": event.previous_digest,
        "digest": event.digest,
    }


class AuditEventListApi(WorkspaceAPIView):
    """Audit events, newest first. Filters: ``actor``, ``action`` (or its prefix),
    ``object`` (a type or an id), ``since`` and ``until`` (dates, inclusive)."""

    capability = Capability.VIEW_AUDIT

    def get(self, request, workspace_slug):
        form = AuditFilterForm(
            request.query_params,
            actions=selectors.audit_action_list(workspace=request.workspace),
        )
        if not form.is_valid():
            raise serializers.ValidationError(form.errors.get_json_data(escape_html=False))
        services.audit_seal()  # what a caller reads is sealed (the sealer runs every second)
        events = selectors.audit_event_list(workspace=request.workspace, **form.selector_filters())
        paginator = Pagination()
        page = paginator.paginate_queryset(events, request, view=self)
        assert page is not None  # PAGE_SIZE gives every request a limit
        sensitive = sensitive_keys_for_workspace(request.workspace.id)
        return paginator.get_paginated_response([event_data(event, sensitive) for event in page])


class AuditVerifyApi(WorkspaceAPIView):
    """Check the workspace's hash chain; names the first tampered event."""

    capability = Capability.VIEW_AUDIT

    def post(self, request, workspace_slug):
        report = services.audit_verify(workspace_id=request.workspace.id)
        return Response(
            {
                "ok": report.ok,
                "checked": report.checked,
                "first_bad_sequence": report.first_bad_sequence,
                "problem": report.problem,
                "unsealed": report.unsealed,
            }
        )


def data_settings_data(current: Any) -> dict[str, Any]:
    return {
        "sensitive_fields": list(current.sensitive_fields),
        "retention_days": current.retention_days,
        "updated_at": current.updated_at,
    }


class DataSettingsSerializer(serializers.Serializer):
    sensitive_fields = serializers.ListField(
        child=serializers.RegexField(FIELD_NAME.pattern, max_length=100),
        max_length=MAX_SENSITIVE_FIELDS,
    )
    retention_days = serializers.IntegerField(min_value=1, max_value=3650)


class DataSettingsApi(WorkspaceAPIView):
    """The workspace's field classification (PII) and run data retention (Settings →
    Data). ``PUT`` replaces both; admins only."""

    capability = Capability.MANAGE_SETTINGS
    request_serializer = {"PUT": DataSettingsSerializer}

    def get(self, request, workspace_slug):
        return Response(
            data_settings_data(selectors.data_settings_get(workspace_id=request.workspace.id))
        )

    def put(self, request, workspace_slug):
        data = DataSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        saved = services.data_settings_save(
            workspace=request.workspace,
            actor=request.user,
            sensitive_fields=data.validated_data["sensitive_fields"],
            retention_days=data.validated_data["retention_days"],
        )
        return Response(data_settings_data(saved))
