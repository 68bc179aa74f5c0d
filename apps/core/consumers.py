"""The workspace event stream: one WebSocket per open page, fed by a Channels group.

Services publish with ``apps.core.events.publish_workspace_event`` after commit; the
consumer forwards each event as JSON to every member's open page (run status, inbox counts,
toasts). Membership is checked on connect; a non-member is refused.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from apps.accounts.selectors import membership_get

from .events import workspace_group


class WorkspaceEventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["workspace_slug"]
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            membership = await database_sync_to_async(membership_get)(
                user=user, workspace_slug=slug
            )
        except Http404:
            await self.close(code=4404)
            return
        self.group_name = workspace_group(membership.workspace_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Clients only listen; a ping keeps proxies from closing an idle socket.
        if content == {"type": "ping"}:
            await self.send_json({"type": "pong"})

    async def workspace_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
