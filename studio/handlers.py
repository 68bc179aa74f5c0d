"""The HTTP half of the ASGI application (``studio/asgi.py``)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import MiddlewareNotUsed, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections
from django.http import FileResponse, HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

# Threads that run requests' synchronous code. They live as long as the process, so what
# a thread keeps (a compiled policy engine, which regorus lets no other thread use) is
# built once per thread, not once per request. Keep it at most DATABASE_POOL_SIZE: each
# busy thread holds one pooled connection.
WEB_THREADS = int(os.environ.get("WEB_THREADS") or 10)
_pool = ThreadPoolExecutor(max_workers=max(1, WEB_THREADS), thread_name_prefix="flowgate-web")


def _in_pool(function: Any) -> Any:
    return sync_to_async(function, thread_sensitive=False, executor=_pool)


# What a POST to /hooks/ (a machine's delivery: studio.urls routes only the webhook view
# there, which is CSRF-exempt and reads no session, user, message or htmx header) does not
# pass through: the probe-host rewrite (probe paths only), static files, sessions, CSRF,
# authentication, messages, htmx and login lockouts. Security, CommonMiddleware, the framing
# and CSP headers and the outage answer apply as to any request, so the response is the
# same; eight middlewares fewer save a sync W1 run about 1 ms of the web process's 10.
NOT_FOR_WEBHOOKS = frozenset(
    {
        "studio.probes.ProbeHostMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django_htmx.middleware.HtmxMiddleware",
        "axes.middleware.AxesMiddleware",
    }
)


def is_webhook_delivery(scope: dict[str, Any]) -> bool:
    return scope["method"] == "POST" and scope["path"].startswith("/hooks/")


class WebhookChain(BaseHandler):
    """Django's synchronous request handling for webhook deliveries: ``settings.MIDDLEWARE``
    without ``NOT_FOR_WEBHOOKS``, in the same order, built as ``load_middleware`` builds a
    synchronous chain (every middleware of the studio is synchronous)."""

    def __init__(self) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        # Each middleware's process_response, innermost first: what the webhook fast path
        # (studio/ingress.py) applies to its answers, so they carry the same headers.
        self._response_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        for path in reversed(settings.MIDDLEWARE):
            if path in NOT_FOR_WEBHOOKS:
                continue
            try:
                middleware = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            if hasattr(middleware, "process_response"):
                self._response_middleware.append(middleware.process_response)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler

    def finish_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """``response``, made without the chain, as the chain's middleware leave it."""
        for process_response in self._response_middleware:
            response = process_response(request, response)
        return response


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's synchronous part in one hand-off to a
    thread of a pool that lives as long as the process.

    Every view and middleware of the studio is synchronous (the ORM). Django's own handler
    hands over between the event loop and a thread around each ``MiddlewareMixin`` hook
    (some seventeen times per request) and, for each request, starts a thread of its own
    (``ThreadSensitiveContext``) for the request signals, the view and the close. Here the
    body is read on the event loop; then one call on a pooled thread sends
    ``request_started`` (which drops a broken or expired database connection), runs the
    middleware chain and view, and closes a complete response (``request_finished``: the
    connection goes back to the pool); the event loop sends it. A streaming response
    (exports) is read and closed as Django does it, in a thread of the request's own.
    WebSockets stay on Channels' async consumers."""

    def __init__(self) -> None:
        super().__init__()
        # Built once: asgiref's wrapper inspects the function each time it is made.
        self._respond_in_pool = _in_pool(self._respond)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self.webhook_chain = WebhookChain()

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = None
            if is_webhook_delivery(scope):
                from studio.ingress import webhook_fast_path  # needs the apps loaded

                response = await webhook_fast_path(self, scope, body_file)
            if response is None:
                response = await self._respond_in_pool(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    # Django reads a streaming body in this request's own thread (where
                    # its queries run); closing it there releases that thread's connection.
                    await sync_to_async(response.close)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None or error_response is not None:
            response: HttpResponseBase = error_response or HttpResponseBadRequest()
        else:
            chain = self.webhook_chain if is_webhook_delivery(scope) else self
            response = chain.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if response.streaming:
            close_old_connections()  # as request_finished would for this thread
        else:
            response.close()  # its content is in memory; request_finished frees the rest
        return response


def http_application() -> SyncChainASGIHandler:
    """What ``django.core.asgi.get_asgi_application()`` does, with the handler above."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
