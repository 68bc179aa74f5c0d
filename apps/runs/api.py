"""REST API for runs: start, test-run drafts, list, inspect, cancel, retry, re-run; and the
expression preview the canvas uses."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.api import WorkspaceAPIView
from apps.accounts.permissions import Capability
from apps.audit.redaction import redact, sensitive_keys_for_workspace
from apps.blocks.expressions import ExpressionError, evaluate
from apps.core.ratelimit import PreviewRateThrottle, RedisRateThrottle
from apps.flows.selectors import flow_get

from . import selectors, services
from .blocks import envelope
from .models import Run, RunStatus, StepRun, Trigger


def step_data(step: StepRun, sensitive: frozenset[str] = frozenset()) -> dict[str, Any]:
    """One step; ``sensitive`` names the workspace's classified fields, masked here."""
    return {
        "node": step.node_id,
        "type": step.block_type,
        "status": step.status,
        "attempt": step.attempt,
        "input": redact(step.input, extra_keys=sensitive),
        "output": redact(step.output, extra_keys=sensitive),
        "port": step.port,
        "error": redact(step.error, extra_keys=sensitive),
        "meta": redact(step.meta, extra_keys=sensitive),
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration_ms": step.duration_ms,
        "next_attempt_at": step.next_attempt_at,
        "wait": {
            "kind": step.wait_kind,
            "reference": step.wait_reference,
            "deadline": step.wait_deadline,
        }
        if step.wait_kind
        else None,
    }


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "flow": {"id": str(run.flow_id), "name": run.flow.name, "slug": run.flow.slug},
        "version": run.version.number if run.version else None,
        "status": run.status,
        "trigger": run.trigger,
        "dry_run": run.dry_run,
        "correlation_id": run.correlation_id,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "error": run.error,
        "rerun_of": str(run.rerun_of_id) if run.rerun_of_id else None,
    }


def run_detail(run: Run) -> dict[str, Any]:
    """The run with its steps; fields the workspace classified as sensitive are masked."""
    steps = selectors.run_steps(run=run)
    keys = sensitive_keys_for_workspace(run.workspace_id)
    return {
        **run_summary(run),
        "input": redact(run.input, extra_keys=keys),
        "output": redact(run.output, extra_keys=keys),
        "response": redact(run.response, extra_keys=keys),
        "steps": [step_data(step, keys) for step in steps["latest"]],
        "attempts": [step_data(step, keys) for step in steps["all"]],
    }


def runs_error(error: services.RunError) -> Response:
    return Response(
        {"error": {"code": "conflict", "message": str(error)}}, status=status.HTTP_409_CONFLICT
    )


class StartRunApi(WorkspaceAPIView):
    """Start a run of the flow's published version with JSON input (manual trigger)."""

    capability = Capability.START_RUNS

    class InputSerializer(serializers.Serializer):
        input = serializers.JSONField(required=False, default=dict)
        idempotency_key = serializers.CharField(max_length=200, required=False)

    def post(self, request, workspace_slug, flow_id):
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = data.validated_data.get("idempotency_key") or request.headers.get("Idempotency-Key")
        try:
            started = services.run_start(
                flow=flow,
                trigger=Trigger.MANUAL,
                actor=request.user,
                payload=envelope(data.validated_data["input"]),
                idempotency_key=key,
            )
        except services.RunError as error:
            return runs_error(error)
        return Response(run_summary(started.run), status=201 if started.created else 200)


class TestRunApi(WorkspaceAPIView):
    """Run the current draft (optionally as a dry run) with sample input."""

    capability = Capability.EDIT_FLOWS

    class InputSerializer(serializers.Serializer):
        input = serializers.JSONField(required=False, default=dict)
        dry_run = serializers.BooleanField(required=False, default=False)

    def post(self, request, workspace_slug, flow_id):
        flow = flow_get(workspace=request.workspace, flow_id=flow_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        from apps.flows.definition import validate_definition

        problems = validate_definition(flow.draft_definition, workspace_id=flow.workspace_id)
        if problems:
            return Response(
                {
                    "error": {
                        "code": "invalid",
                        "message": "fix the flow's problems first",
                        "problems": [p.as_dict() for p in problems],
                    }
                },
                status=400,
            )
        started = services.run_start(
            flow=flow,
            trigger=Trigger.TEST,
            actor=request.user,
            payload=envelope(data.validated_data["input"]),
            draft_definition=flow.draft_definition,
            dry_run=data.validated_data["dry_run"],
        )
        return Response(run_summary(started.run), status=status.HTTP_201_CREATED)


class RunListApi(WorkspaceAPIView):
    capability = Capability.VIEW_RUNS

    def get(self, request, workspace_slug):
        params = request.query_params
        filters = self._filters(params)
        runs = selectors.run_list(workspace=request.workspace, **filters)
        page = self.paginator.paginate_queryset(runs, request, view=self)
        return self.paginator.get_paginated_response([run_summary(run) for run in page])

    @staticmethod
    def _filters(params: Any) -> dict[str, Any]:
        filters: dict[str, Any] = {}
        if params.get("status"):
            if params["status"] not in RunStatus.values:
                raise serializers.ValidationError(
                    {"status": [f"one of {', '.join(RunStatus.values)}"]}
                )
            filters["status"] = params["status"]
        if params.get("trigger"):
            if params["trigger"] not in Trigger.values:
                raise serializers.ValidationError(
                    {"trigger": [f"one of {', '.join(Trigger.values)}"]}
                )
            filters["trigger"] = params["trigger"]
        for name in ("since", "until"):
            if params.get(name):
                moment = parse_datetime(params[name])
                if moment is None:
                    raise serializers.ValidationError({name: ["an ISO 8601 date-time"]})
                filters[name] = moment
        if params.get("flow"):
            try:
                filters["flow_id"] = uuid.UUID(params["flow"])
            except ValueError:
                raise serializers.ValidationError({"flow": ["a flow id (a UUID)"]}) from None
        return filters

    @property
    def paginator(self):
        from apps.core.api import Pagination

        if not hasattr(self, "_paginator"):
            self._paginator = Pagination()
        return self._paginator


class RunDetailApi(WorkspaceAPIView):
    capability = Capability.VIEW_RUNS

    def get(self, request, workspace_slug, run_id):
        return Response(run_detail(selectors.run_get(workspace=request.workspace, run_id=run_id)))


class RunActionApi(WorkspaceAPIView):
    """cancel / retry (from the failed step) / rerun (from the start, latest version)."""

    capability = Capability.MANAGE_RUNS
    action: str = ""

    def post(self, request, workspace_slug, run_id):
        run = selectors.run_get(workspace=request.workspace, run_id=run_id)
        operation = {
            "cancel": services.run_cancel,
            "retry": services.run_retry_from_failed,
            "rerun": services.run_rerun,
        }[self.action]
        try:
            result = operation(run=run, actor=request.user)
        except services.RunError as error:
            return runs_error(error)
        return Response(run_summary(result), status=201 if self.action == "rerun" else 200)


class BulkRunActionApi(WorkspaceAPIView):
    """Retry or re-run many failed runs at once (the dead-letter list)."""

    capability = Capability.MANAGE_RUNS

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["retry", "rerun"])
        runs = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=500)

    def post(self, request, workspace_slug):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        runs = selectors.run_list(workspace=request.workspace).filter(
            pk__in=data.validated_data["runs"]
        )
        outcomes = services.run_bulk_action(
            runs=runs, action=data.validated_data["action"], actor=request.user
        )
        results = [
            {"run": o.run_id, "ok": True, "result": o.result_id}
            if o.ok
            else {"run": o.run_id, "ok": False, "message": o.message}
            for o in outcomes
        ]
        return Response({"results": results})


class ExpressionPreviewApi(WorkspaceAPIView):
    capability = Capability.VIEW_FLOWS
    throttle_classes = [RedisRateThrottle, PreviewRateThrottle]

    class InputSerializer(serializers.Serializer):
        expression = serializers.CharField(max_length=4000)
        scope = serializers.DictField(required=False, default=dict)

    def post(self, request, workspace_slug):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scope = {"trigger": {}, "steps": {}, "vars": {}, "env": {}, **data.validated_data["scope"]}
        try:
            value = evaluate(data.validated_data["expression"], scope)
        except ExpressionError as error:
            # A preview that shows an expression's error succeeded: 200, so the editor's
            # console does not log a failed request on every keystroke.
            return Response({"error": {"code": "invalid", "message": error.reason}})
        return Response({"value": value})
