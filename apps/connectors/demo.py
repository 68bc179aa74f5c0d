"""Demo connections for the demo workspace (``manage.py seed_demo``), used by the gallery
templates: ``demo-events`` (streams on the studio's Redis), ``demo-ledger`` (a
``demo_ledger`` table in the studio's own Postgres database) and ``demo-mail`` (the local
mail sink that ``manage.py studio`` runs, which prints every message it receives)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connection as database

from studio.processes import MAIL_SINK_PORT

from .models import Connection
from .services import connection_create

DEMO_EVENTS = "demo-events"
DEMO_LEDGER = "demo-ledger"
DEMO_MAIL = "demo-mail"

LEDGER_TABLE_SQL = """
    CREATE TABLE IF NOT EXISTS demo_ledger (
        id bigserial PRIMARY KEY,
        employee text NOT NULL,
        amount numeric(12, 2) NOT NULL,
        category text NOT NULL,
        run_id uuid,
        booked_at timestamptz NOT NULL DEFAULT now()
    )
"""


def demo_connections_ensure(*, workspace: Any, actor: Any) -> None:
    """Create whichever demo connection the workspace lacks (by name); idempotent."""
    existing = set(Connection.objects.filter(workspace=workspace).values_list("name", flat=True))
    if DEMO_EVENTS not in existing:
        _events(workspace, actor)
    if DEMO_LEDGER not in existing:
        _ledger(workspace, actor)
    if DEMO_MAIL not in existing:
        _mail(workspace, actor)


def demo_ledger_table_ensure() -> None:
    with database.cursor() as cursor:
        cursor.execute(LEDGER_TABLE_SQL)


def _ledger(workspace: Any, actor: Any) -> None:
    demo_ledger_table_ensure()
    db = settings.DATABASES["default"]
    connection_create(
        workspace=workspace,
        actor=actor,
        name=DEMO_LEDGER,
        type="postgres",
        description="Demo: the demo_ledger table in the studio's own database",
        config={
            "host": db["HOST"] or "127.0.0.1",
            "port": int(str(db["PORT"] or 5432)),
            "database": db["NAME"],
            "user": db["USER"] or "postgres",
            "sslmode": "prefer",
        },
        secrets={"password": str(db["PASSWORD"])} if db["PASSWORD"] else {},
    )


def _mail(workspace: Any, actor: Any, port: int = MAIL_SINK_PORT) -> None:
    connection_create(
        workspace=workspace,
        actor=actor,
        name=DEMO_MAIL,
        type="smtp",
        description="Demo: the studio's local mail sink (messages are printed in its log)",
        config={
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from_address": "Flowgate demo <support@flowgate.local>",
        },
        secrets={},
    )


def _events(workspace: Any, actor: Any) -> None:
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
