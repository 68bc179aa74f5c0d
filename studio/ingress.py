"""The web process's fast path for webhooks (apps/runs/ingress.py), before Django's
middleware: the request is read and checked as Django would (path, host, size), handed to
the batcher, and awaited on the event loop without holding a thread; a flow's response
(a sync webhook's) passes through the response half of the webhook chain's middleware
(the same headers as the view's), a 202 gets the security headers. A delivery the
batcher leaves to the view, or anything this path does not take, returns None: the
caller then runs Django's whole chain as for any request (the body is rewound for it).
A signed webhook, or a sync one the workers run (as far as this process last read its
subscription), goes to the view at once."""

from __future__ import annotations

import io
import logging
import re
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.security import SecurityMiddleware

from apps.core.tracing import tracing_enabled
from apps.runs.ingress import Delivery, Throttled, Unavailable, batcher, left_to_view
from apps.runs.webhooks import (
    WEBHOOK_COUNTED,
    lower_case_headers,
    outcome_response,
    throttled_response,
)

from .outage import unavailable

if TYPE_CHECKING:
    from .handlers import SyncChainASGIHandler

logger = logging.getLogger(__name__)
WEBHOOK_PATH = re.compile(r"^/hooks/(?P<token>[^/]+)$")
# The response headers SecurityMiddleware sets (nosniff, referrer and opener policies).
_security = SecurityMiddleware(lambda request: HttpResponse())


async def webhook_fast_path(
    handler: SyncChainASGIHandler, scope: dict[str, Any], body_file: IO[bytes]
) -> HttpResponseBase | None:
    if tracing_enabled():
        # The request's span (and a caller's traceparent) come from Django's middleware,
        # which this path skips: with tracing on, every webhook takes the view.
        return None
    if left_to_view(scope["path"].rpartition("/")[2]):
        return None  # the view runs it, no stop at the batcher
    delivery, request = _delivery(handler, scope, body_file)
    if delivery is None:
        return None
    verdict = await batcher.verdict(delivery)
    if verdict is None:
        if delivery.counted:
            scope[WEBHOOK_COUNTED] = True  # the view does not count it again
        return None
    if isinstance(verdict, Throttled):
        response: JsonResponse = throttled_response(verdict.retry_after)
    elif isinstance(verdict, Unavailable):
        response = unavailable()
    else:
        response = outcome_response(request, verdict)
    if delivery.ran_inline:  # the flow's response: with every header the view's would have
        return handler.webhook_chain.finish_response(request, response)
    # A 202 (or a refusal) for a machine: the security headers, as it always had; the
    # policy headers of pages cost a tenth of the web process's CPU per async delivery.
    return _security.process_response(request, response)


def _delivery(
    handler: ASGIHandler, scope: dict[str, Any], body_file: IO[bytes]
) -> tuple[Delivery | None, Any]:
    try:
        body = body_file.read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return None, None  # the view answers 413
        # Django's request closes the stream it reads: it gets a copy, the view the file.
        request, error = handler.create_request(scope, io.BytesIO(body))
        if request is None or error is not None:
            return None, None
        match = WEBHOOK_PATH.match(request.path_info)
        if match is None:
            return None, None
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return None, None  # SecurityMiddleware redirects it
        request.get_host()  # refuses a host not allowed (the view answers it)
        delivery = Delivery(
            token=match["token"],
            body=body,
            content_type=request.content_type or "",
            headers=lower_case_headers(request),
            query=request.GET.dict(),
        )
    except DisallowedHost:
        return None, None
    except Exception:
        logger.exception("webhook fast path: the view takes this request")
        return None, None
    finally:
        body_file.seek(0)
    return delivery, request
