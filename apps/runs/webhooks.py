"""The public webhook endpoint: ``POST /hooks/<token>``. Thin: limits (rate per flow, size), then triggers."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.core.generation_cache import generation_keys, snapshot
from apps.core.ratelimit import hit_and_read

from .triggers import WebhookOutcome, WebhookRejected, delivery_event_id, webhook_deliver

# Set in the ASGI scope of a delivery whose rate limit the fast path already counted.
WEBHOOK_COUNTED = "flowgate.webhook_counted"


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, token: str) -> JsonResponse:
    # Per flow (its URL token), before any work: a flood costs a few Redis reads a request.
    # The same round trip reads the generations of the process's caches (subscriptions,
    # published policies) for the whole request.
    # A delivery repeated with the same idempotency key is not counted again, nor one the
    # fast path (studio/ingress.py) counted and left to this view.
    headers = lower_case_headers(request)
    retry_after, generations = hit_and_read(
        scope="webhook",
        key=hashlib.sha256(token.encode()).hexdigest(),
        names=generation_keys(),
        once=delivery_event_id(headers),
        count=not getattr(request, "scope", {}).get(WEBHOOK_COUNTED),
    )
    if retry_after is not None:
        return throttled_response(retry_after)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if int(request.headers.get("Content-Length") or 0) > limit:
        return too_large_response(limit)
    body = request.body
    if len(body) > limit:
        return too_large_response(limit)
    try:
        with snapshot(generations):
            outcome = webhook_deliver(
                token=token,
                body=body,
                content_type=request.content_type or "",
                headers=headers,
                query=request.GET.dict(),
            )
    except WebhookRejected as rejected:
        return JsonResponse(
            {"error": {"code": "rejected", "message": rejected.message}}, status=rejected.status
        )
    return outcome_response(request, outcome)


def lower_case_headers(request: HttpRequest) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items()}


def throttled_response(retry_after: int) -> JsonResponse:
    response = JsonResponse(
        {
            "error": {
                "code": "throttled",
                "message": f"too many deliveries to this webhook; retry in {retry_after} s",
            }
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def too_large_response(limit: int) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": "too_large", "message": f"the body is over {limit} bytes"}},
        status=413,
    )


def outcome_response(request: HttpRequest, outcome: WebhookOutcome) -> JsonResponse:
    """The caller's answer: the flow's response, or where to follow the run."""
    response = JsonResponse(outcome.body, status=outcome.status, safe=False)
    for name, value in outcome.headers.items():
        response[name] = value
    response["X-Flowgate-Run"] = str(outcome.run.id)
    if outcome.status == 202:  # the run goes on: where to follow it
        response["Location"] = request.build_absolute_uri(outcome.body["url"])
    if not outcome.created:
        response["X-Flowgate-Duplicate"] = "true"
    return response
