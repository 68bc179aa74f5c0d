"""Running one connector block in a real flow, for the connector tests."""

from __future__ import annotations

from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import Run, StepRun
from apps.runs.services import run_start
from tests.runs.helpers import definition, node, published_flow


def run_sql_block(workspace, actor, block_type, body=None, **config) -> tuple[Run, StepRun]:
    """Publish start → ``block_type`` (on the connection named "books") and run it here."""
    flow = published_flow(
        workspace,
        actor,
        definition(
            [
                node("start", "trigger.manual"),
                node("sql", block_type, connection="books", **config),
            ],
            [("start", "sql")],
        ),
    )
    run = run_start(flow=flow, trigger="manual", payload=envelope(body or {}), enqueue=False).run
    advance(run.id)
    run.refresh_from_db()
    return run, StepRun.objects.filter(run=run, node_id="sql").order_by("-attempt").first()
