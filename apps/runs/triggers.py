"""Webhook deliveries (sync and async): ``trigger.webhook``, ``trigger.email`` and any trigger
block whose activation kind is ``webhook``. (Schedules: ``schedules.py``.)

A webhook delivery is authenticated (the secret URL token; for ``auth: hmac`` also a
Standard Webhooks signature made with the flow's own signing secret, within five minutes,
never seen before), deduplicated by its event id (``Idempotency-Key``, ``X-Event-Id`` or
``webhook-id`` header), and turned into a run. In ``sync`` mode the caller gets the flow's
response: a flow that cannot wait runs inline in the web process; any other is handed to
the workers while the request waits for its end (see ``sync_wait``). Only when the timeout
passes, or the run waits on a person, is the answer 202 with the run's id and URL, and a
worker carries on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import redis
from django.db import IntegrityError
from django.db.models import Field
from django.urls import reverse

from apps.connectors.webhook.signing import WINDOW_SECONDS, SignatureRejected, verify
from apps.core import jsonsafe
from apps.core.redis_clients import redis_client
from apps.flows.definition import FlowGraph
from apps.flows.models import Flow, FlowStatus, TriggerSubscription
from apps.flows.selectors import flow_webhook_secret
from apps.flows.subscriptions import subscription_for

from .blocks import envelope
from .engine import advance, advance_new, version_graph
from .models import TERMINAL_RUN_STATUSES, Run, RunStatus, Trigger
from .services import run_by_idempotency_key, run_new, run_start
from .sync_wait import run_handover_and_wait
from .tasks import enqueue_advance

HEADERS_KEPT = (
    "content-type",
    "user-agent",
    "x-event-id",
    "idempotency-key",
    "x-request-id",
    "webhook-id",
)


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


def webhook_subscription(token: str) -> TriggerSubscription:
    """The published flow listening at ``token`` (its subscription row, written on publish),
    or the reason there is none."""
    subscription = subscription_for("webhook", token)
    if subscription is not None:
        return subscription
    flow = Flow.objects.filter(webhook_token=token).first()
    if flow is None or flow.status == FlowStatus.ARCHIVED:
        raise WebhookRejected("unknown or revoked webhook URL", 401)
    if flow.latest_version_id is None:
        raise WebhookRejected(f"{flow.name} has no published version", 409)
    raise WebhookRejected(f"{flow.name} is not started by a webhook", 409)


def verify_signed_delivery(flow: Flow, headers: dict[str, str], body: bytes) -> None:
    """For ``auth: hmac``: the request is signed with the flow's own signing secret (never
    the URL token) and was not received before. Raises WebhookRejected."""
    secret = flow_webhook_secret(flow)
    if not secret:
        raise WebhookRejected(
            f"{flow.name} has no webhook signing secret yet: an admin generates one on the "
            "flow's webhook page",
            401,
        )
    try:
        delivery = verify(secret, headers, body)
    except SignatureRejected as rejected:
        raise WebhookRejected(str(rejected), rejected.status) from None
    remember = (
        f"flowgate:webhook-delivery:{flow.pk}:{hashlib.sha256(delivery.encode()).hexdigest()}"
    )
    try:
        first = redis_client().set(remember, 1, nx=True, ex=2 * WINDOW_SECONDS)
    except redis.RedisError:
        raise WebhookRejected(
            "cannot check for replayed deliveries now; retry later", 503
        ) from None
    if not first:
        raise WebhookRejected(
            "this signed request was received before: a replay is refused (sign each delivery "
            "with a new webhook-timestamp)",
            409,
        )


def webhook_deliver(
    *, token: str, body: bytes, content_type: str, headers: dict[str, str], query: dict[str, str]
) -> WebhookOutcome:
    subscription = webhook_subscription(token)
    flow, config = subscription.flow, subscription.settings
    if config.get("auth", "token") == "hmac":
        verify_signed_delivery(flow, headers, body)
    delivery = webhook_delivery(body=body, content_type=content_type, headers=headers, query=query)
    sync = config.get("mode", "async") == "sync"
    budget = sync_budget(subscription)
    if sync and (inline := inline_graph(subscription)) is not None:
        return _run_inline(subscription, delivery, inline, budget=budget)
    graph = version_graph(subscription.version_id) if sync else None
    started = run_start(
        flow=flow,
        version=subscription.version,
        trigger=Trigger.WEBHOOK,
        payload=delivery.payload,
        idempotency_key=delivery.event_id,
        correlation_id=delivery.correlation_id,
        enqueue=not sync,
    )
    run = started.run
    if graph is not None and started.created:
        run = run_inline_or_handover(run, graph, budget=budget)
    return webhook_outcome(run, started.created)


def _run_inline(
    subscription: TriggerSubscription, delivery: Delivery, graph: FlowGraph, *, budget: float
) -> WebhookOutcome:
    """The fast path, for flows that cannot wait: the web process writes the run already
    leased, with its first steps (no claim, one commit for a run that ends there), and runs
    it to its end within ``budget``."""
    flow, key = subscription.flow, delivery.event_id
    if key and (existing := run_by_idempotency_key(flow, key)):
        return webhook_outcome(existing, False)
    run = run_new(
        flow=flow,
        version=subscription.version,
        trigger=Trigger.WEBHOOK,
        payload=delivery.payload,
        idempotency_key=key,
        correlation_id=delivery.correlation_id,
    )
    try:
        outcome = advance_new(run, budget_seconds=budget, graph=graph)
    except IntegrityError:
        # A delivery with the same key raced this one and won: nothing was written here.
        existing = run_by_idempotency_key(flow, key) if key else None
        if existing is None:
            raise
        return webhook_outcome(existing, False)
    return inline_outcome(outcome.run or run)  # as the engine left it: no re-read


def inline_outcome(run: Run) -> WebhookOutcome:
    """The answer to the caller of a new run advanced inline (``advance_new``, or the
    webhook batcher's session), as the engine left it; a run it could not finish within
    the caller's budget is handed to a worker."""
    if run.status not in TERMINAL_RUN_STATUSES and run.status != RunStatus.WAITING:
        enqueue_advance(run.pk, run.trace_context)  # out of time: a worker finishes it
    return webhook_outcome(run, True)


def sync_budget(subscription: TriggerSubscription) -> float:
    """How long a sync webhook's caller waits for the run's end (its ``timeout_seconds``)."""
    return float(subscription.settings.get("timeout_seconds", 10))


def inline_graph(subscription: TriggerSubscription) -> FlowGraph | None:
    """The graph of a sync webhook's flow that the web process runs to its end itself: one
    whose blocks never wait (for-each, sub-flow, approval, delay go to the workers) and
    without a concurrency limit (the workers claim such a flow's runs under its limit)."""
    if subscription.settings.get("mode", "async") != "sync":
        return None
    graph = version_graph(subscription.version_id)
    return None if _may_wait(graph) or graph.concurrency else graph


def _may_wait(graph: FlowGraph) -> bool:
    return any(node.block.may_wait for node in graph.nodes.values())


@dataclass(frozen=True)
class Delivery:
    """What a webhook request gives its run."""

    payload: dict[str, Any]
    event_id: str | None
    correlation_id: str | None


def webhook_delivery(
    *, body: bytes, content_type: str, headers: dict[str, str], query: dict[str, str]
) -> Delivery:
    """The run's input (the trigger envelope), idempotency key and correlation id of a
    request; ``headers`` with lower-case names. Raises WebhookRejected (400) for a body or
    header the run cannot take."""
    payload = envelope(
        _parse_body(body, content_type),
        headers={key: value for key, value in headers.items() if key in HEADERS_KEPT},
        query=query,
        raw=body.decode("utf-8", errors="replace") if "json" not in content_type else None,
        content_type=content_type,
    )
    _check_header_lengths(headers)
    return Delivery(payload, delivery_event_id(headers), headers.get("x-correlation-id"))


def delivery_event_id(headers: dict[str, str]) -> str | None:
    """A delivery's idempotency key, from its headers (lower-case names)."""
    return headers.get("idempotency-key") or headers.get("x-event-id") or headers.get("webhook-id")


# What the run's columns hold; longer keys are refused, not cut: cut keys could collide.
def _column_length(name: str) -> int:
    field = Run._meta.get_field(name)
    assert isinstance(field, Field) and field.max_length is not None
    return field.max_length


HEADER_LIMITS = {
    "idempotency-key": _column_length("idempotency_key"),
    "x-event-id": _column_length("idempotency_key"),
    "webhook-id": _column_length("idempotency_key"),
    "x-correlation-id": _column_length("correlation_id"),
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


def run_inline_or_handover(run: Run, graph: FlowGraph, *, budget: float) -> Run:
    """Run ``run`` (created with ``enqueue=False``, committed) for a caller who waits up to
    ``budget`` seconds (a sync webhook, an MCP tool call). The fast path: the web process
    runs flows that cannot wait; others go to workers, and the request waits for them
    without holding one."""
    if _may_wait(graph):
        return run_handover_and_wait(run, timeout=budget)
    outcome = advance(run.id, budget_seconds=budget, graph=graph)
    if outcome.run is not None:
        run = outcome.run  # as the engine left it: no re-read
    else:
        run.refresh_from_db()
    if run.status not in TERMINAL_RUN_STATUSES and run.status != RunStatus.WAITING:
        enqueue_advance(run.pk, run.trace_context)  # out of time: a worker finishes it
    return run


def webhook_outcome(run: Run, created: bool) -> WebhookOutcome:
    """What the caller is answered for ``run`` (with its workspace loaded)."""
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
    return _followed(run, created, run.status)


def handed_over_outcome(run: Run) -> WebhookOutcome:
    """The answer to the caller of a new run advanced inline whose last round was rolled
    back: 202, where to follow it (it stands as its last commit left it, which this
    process no longer knows; the reconciler takes it again)."""
    return _followed(run, True, RunStatus.RUNNING)


def _followed(run: Run, created: bool, status: str) -> WebhookOutcome:
    """202: the run goes on, and where to follow it."""
    url = reverse("runs:detail", kwargs={"workspace_slug": run.workspace.slug, "run_id": run.id})
    return WebhookOutcome(run, created, 202, {"run": str(run.id), "status": status, "url": url}, {})
