"""The HTTP half of the ASGI application (``studio/asgi.py``)."""

from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware chain and view in one
    thread. Every view and middleware of the studio is synchronous (the ORM); Django's
    async chain hands over between the event loop and a thread around each
    ``MiddlewareMixin`` hook, some seventeen times per request, which was most of a bare
    page's CPU. WebSockets stay on Channels' async consumers."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def http_application() -> SyncChainASGIHandler:
    """What ``django.core.asgi.get_asgi_application()`` does, with the handler above."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
