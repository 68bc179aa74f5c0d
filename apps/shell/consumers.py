"""Live event streams: one WebSocket per open page, fed by a Channels group.

``ws/w/<slug>/events/`` carries the workspace's events (run status, inbox counts, toasts);
apps narrow it to one object by subclassing (``apps.runs.consumers.RunEventsConsumer``).
Services publish with ``apps.core.events`` after commit. Membership is checked on connect;
a non-member is refused with 4404.

The layer is Redis pub/sub, whose subscriptions die silently when Redis restarts: each
socket sends itself an echo through the layer every ``LIVENESS_SECONDS``, and one that did
not come back closes the socket with 1012 (service restart). The page reconnects, which
subscribes anew, and re-reads what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import membership_get
from apps.core.events import workspace_group

LIVENESS_SECONDS = 30.0
SERVICE_RESTART = 1012


class WorkspaceEventsConsumer(AsyncJsonWebsocketConsumer):
    """Follows the workspace's group; subclasses narrow it with ``group_for``."""

    def group_for(self, membership: Membership, kwargs: dict[str, Any]) -> str:
        """The group this socket follows. Raise Http404 when the member may not see it."""
        return workspace_group(membership.workspace_id)

    def _authorised_group(self, user: Any, kwargs: dict[str, Any]) -> str:
        membership = membership_get(user=user, workspace_slug=kwargs["workspace_slug"])
        return self.group_for(membership, kwargs)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            self.group_name = await database_sync_to_async(self._authorised_group)(
                user, self.scope["url_route"]["kwargs"]
            )
        except Http404:
            await self.close(code=4404)
            return
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        self.echo_returned = True
        self.liveness = asyncio.create_task(self._check_liveness())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "liveness"):
            self.liveness.cancel()
        if hasattr(self, "group_name"):
            with contextlib.suppress(Exception):  # Redis may be the reason we are closing
                await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def _check_liveness(self) -> None:
        while self.echo_returned:
            self.echo_returned = False
            with contextlib.suppress(Exception):  # unsent is as good as lost
                await self.channel_layer.send(self.channel_name, {"type": "layer.echo"})
            await asyncio.sleep(LIVENESS_SECONDS)
        await self.close(code=SERVICE_RESTART)

    async def layer_echo(self, message: dict[str, Any]) -> None:
        self.echo_returned = True

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Clients only listen; a ping keeps proxies from closing an idle socket.
        if content == {"type": "ping"}:
            await self.send_json({"type": "pong"})

    async def workspace_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])

    async def workspace_events(self, message: dict[str, Any]) -> None:
        """Events published together arrive as one message; the page gets them one by one."""
        for event in message["events"]:
            await self.send_json(event)
