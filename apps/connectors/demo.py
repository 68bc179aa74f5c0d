"""Demo connections for the demo workspace (``manage.py seed_demo``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

from .models import Connection
from .services import connection_create

DEMO_EVENTS = "demo-events"


def demo_connections_ensure(*, workspace: Any, actor: Any) -> None:
    if Connection.objects.filter(workspace=workspace, name=DEMO_EVENTS).exists():
        return
    url = urlsplit(settings.REDIS_URL)
    database = url.path.strip("/")
    connection_create(
        workspace=workspace,
        actor=actor,
        name=DEMO_EVENTS,
        type="redis",
        description="Demo: streams on the studio's own Redis",
        config={
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 6379,
            "db": int(database) if database.isdigit() else 0,
            "username": unquote(url.username or ""),
            "tls": url.scheme == "rediss",
        },
        secrets={"password": unquote(url.password)} if url.password else {},
    )
