"""Triggers: webhooks (sync and async), schedules and manual starts.

A webhook delivery is authenticated (the secret URL token; for ``auth: hmac`` also an
HMAC-SHA256 signature over ``timestamp.body`` within five minutes), deduplicated by its
event id (``Idempotency-Key`` or ``X-Event-Id`` header), and turned into a run. In ``sync``
mode the caller gets the flow's response: a flow that cannot wait runs inline in the web
process; any other is handed to the workers while the request waits for its end (see
``sync_wait``). Only when the timeout passes, or the run waits on a person, is the answer
202 with the run's id and URL, and a worker carries on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils import timezone

from apps.core import jsonsafe
from apps.flows.definition import FlowGraph
from apps.flows.models import Flow, FlowStatus

from .blocks import envelope
from .engine import advance
from .models import TERMINAL_RUN_STATUSES, Run, RunStatus, Trigger
from .services import RunError, run_start
from .sync_wait import run_handover_and_wait
from .tasks import enqueue_advance

SIGNATURE_HEADER = "X-Flowgate-Signature"
SIGNATURE_WINDOW_SECONDS = 300
HEADERS_KEPT = ("content-type", "user-agent", "x-event-id", "idempotency-key", "x-request-id")


class WebhookRejected(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class WebhookOutcome:
    run: Run
    created: bool
    status: int
    body: Any
    headers: dict[str, str]


def webhook_flow(token: str) -> Flow:
    flow = Flow.objects.select_related("latest_version").filter(webhook_token=token).first()
    if flow is None or flow.status == FlowStatus.ARCHIVED:
        raise WebhookRejected("unknown or revoked webhook URL", 401)
    if flow.latest_version is None:
        raise WebhookRejected(f"{flow.name} has no published version", 409)
    return flow


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str | None, body: bytes, *, now: float | None = None
) -> None:
    if not header:
        raise WebhookRejected(f"missing {SIGNATURE_HEADER} header", 401)
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp, given = int(parts["t"]), parts["v1"]
    except (ValueError, KeyError):
        raise WebhookRejected(f"malformed {SIGNATURE_HEADER} header", 403) from None
    if abs((now or time.time()) - timestamp) > SIGNATURE_WINDOW_SECONDS:
        raise WebhookRejected("the signature timestamp is outside the 5-minute window", 403)
    expected = sign(secret, timestamp, body).split("v1=")[1]
    if not hmac.compare_digest(expected, given):
        raise WebhookRejected("the signature does not match", 403)


def webhook_deliver(
    *, token: str, body: bytes, content_type: str, headers: dict[str, str], query: dict[str, str]
) -> WebhookOutcome:
    flow = webhook_flow(token)
    graph = FlowGraph.parse(flow.latest_version.definition)
    trigger = graph.nodes[graph.trigger]
    if trigger.type not in ("trigger.webhook", "trigger.email"):
        raise WebhookRejected(f"{flow.name} is not started by a webhook", 409)
    config = trigger.config
    if getattr(config, "auth", "token") == "hmac":
        verify_signature(flow.webhook_token, headers.get(SIGNATURE_HEADER.lower()), body)
    payload = envelope(
        _parse_body(body, content_type),
        headers={key: value for key, value in headers.items() if key in HEADERS_KEPT},
        query=query,
        raw=body.decode("utf-8", errors="replace") if "json" not in content_type else None,
        content_type=content_type,
    )
    _check_header_lengths(headers)
    event_id = headers.get("idempotency-key") or headers.get("x-event-id")
    sync = getattr(config, "mode", "async") == "sync"
    started = run_start(
        flow=flow,
        trigger=Trigger.WEBHOOK,
        payload=payload,
        idempotency_key=event_id,
        correlation_id=headers.get("x-correlation-id"),
        enqueue=not sync,
    )
    run = started.run
    if sync and started.created:
        run = _run_inline(run, graph, budget=float(getattr(config, "timeout_seconds", 10)))
    return _outcome(run, started.created)


# What the run's columns hold; longer keys are refused, not cut: cut keys could collide.
HEADER_LIMITS = {
    "idempotency-key": Run._meta.get_field("idempotency_key").max_length,
    "x-event-id": Run._meta.get_field("idempotency_key").max_length,
    "x-correlation-id": Run._meta.get_field("correlation_id").max_length,
}


def _check_header_lengths(headers: dict[str, str]) -> None:
    for header, limit in HEADER_LIMITS.items():
        if len(headers.get(header) or "") > limit:
            raise WebhookRejected(f"the {header} header is longer than {limit} characters", 400)


def _parse_body(body: bytes, content_type: str) -> Any:
    if not body:
        return {}
    if "json" in content_type or not content_type:
        try:
            return jsonsafe.loads(body)
        except jsonsafe.UnstorableJSON as error:
            raise WebhookRejected(f"the body cannot be used: {error}", 400) from None
    return body.decode("utf-8", errors="replace")


def _run_inline(run: Run, graph: FlowGraph, *, budget: float) -> Run:
    """The fast path: the web process runs flows that cannot wait; others go to workers,
    and the request waits for them without holding one."""
    if any(node.block.may_wait for node in graph.nodes.values()):
        return run_handover_and_wait(run, timeout=budget)
    outcome = advance(run.id, budget_seconds=budget, graph=graph)
    if outcome.run is not None:
        run = outcome.run  # as the engine left it: no re-read
    else:
        run.refresh_from_db()
    if run.status not in TERMINAL_RUN_STATUSES and run.status != RunStatus.WAITING:
        enqueue_advance(run.pk, run.trace_context)  # out of time: a worker finishes it
    return run


def _outcome(run: Run, created: bool) -> WebhookOutcome:
    if run.status == RunStatus.SUCCEEDED and run.response:
        response = run.response
        return WebhookOutcome(
            run,
            created,
            int(response.get("status", 200)),
            response.get("body"),
            dict(response.get("headers") or {}),
        )
    if run.status == RunStatus.SUCCEEDED:
        return WebhookOutcome(
            run, created, 200, {"run": str(run.id), "status": run.status, "output": run.output}, {}
        )
    if run.status == RunStatus.FAILED:
        return WebhookOutcome(
            run, created, 422, {"run": str(run.id), "status": run.status, "error": run.error}, {}
        )
    url = reverse("runs:detail", kwargs={"workspace_slug": run.workspace.slug, "run_id": run.id})
    return WebhookOutcome(
        run, created, 202, {"run": str(run.id), "status": run.status, "url": url}, {}
    )


# --- schedules -------------------------------------------------------------------------
def schedule_sync(*, flow: Flow, definition: dict[str, Any] | None) -> None:
    """Keep the flow's Celery beat entry (database scheduler) in line with its published
    trigger: create, update or remove it."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    name = f"flow:{flow.id}"
    graph = FlowGraph.parse(definition) if definition else None
    trigger = graph.nodes[graph.trigger] if graph else None
    if trigger is None or trigger.type != "trigger.schedule" or flow.status == FlowStatus.ARCHIVED:
        PeriodicTask.objects.filter(name=name).delete()
        return
    minute, hour, day_of_month, month_of_year, day_of_week = trigger.config.cron.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=trigger.config.timezone,
    )
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": "runs.start_scheduled",
            "crontab": crontab,
            "interval": None,
            "args": json.dumps([str(flow.id)]),
            "enabled": True,
        },
    )


def start_scheduled_run(*, flow_id: str) -> Run | None:
    flow = Flow.objects.select_related("latest_version").filter(pk=flow_id).first()
    if flow is None or flow.latest_version is None or flow.status == FlowStatus.ARCHIVED:
        return None
    graph = FlowGraph.parse(flow.latest_version.definition)
    trigger = graph.nodes[graph.trigger]
    body = getattr(trigger.config, "body", {})
    # One run per scheduled minute, even if beat fires twice.
    minute = timezone.now().strftime("%Y-%m-%dT%H:%M")
    try:
        return run_start(
            flow=flow,
            trigger=Trigger.SCHEDULE,
            payload=envelope(body, scheduled_for=minute),
            idempotency_key=f"schedule:{minute}",
        ).run
    except RunError:
        return None
