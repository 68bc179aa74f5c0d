"""A run's live events reach the pages following that run, through the real ASGI stack and
the real Redis channel layer; nobody outside the workspace can follow it."""

from __future__ import annotations

import uuid

from asgiref.sync import async_to_sync, sync_to_async

from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.services import run_start
from tests.core.test_events import socket_for
from tests.runs.helpers import definition, node, published_flow

TWO_STEPS = definition(
    [node("start", "trigger.manual"), node("calc", "transform.set", values={"x": "1 + 1"})],
    [("start", "calc")],
)


def run_path(run_id: object, slug: str = "acme") -> str:
    return f"/ws/w/{slug}/runs/{run_id}/events/"


def test_a_run_page_receives_each_step_and_the_final_status(
    transactional_db, builder_client, workspace, builder_user
):
    flow = published_flow(workspace, builder_user, TWO_STEPS)
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run

    async def scenario() -> list[dict]:
        socket = socket_for(builder_client, "acme", path=run_path(run.id))
        connected, _ = await socket.connect()
        assert connected
        await sync_to_async(advance)(run.id)
        events = []
        while not events or events[-1]["type"] != "run.status":
            events.append(await socket.receive_json_from(timeout=5))
        await socket.disconnect()
        return events

    events = async_to_sync(scenario)()
    steps = [(event["node"], event["status"]) for event in events if event["type"] == "run.step"]
    assert ("calc", "succeeded") in steps
    assert events[-1] == {
        "type": "run.status",
        "run": str(run.id),
        "flow": str(flow.id),
        "status": "succeeded",
    }


def test_a_run_of_another_workspace_is_refused(
    transactional_db, outsider_client, workspace, builder_user
):
    flow = published_flow(workspace, builder_user, TWO_STEPS)
    run = run_start(flow=flow, trigger="manual", payload=envelope({}), enqueue=False).run

    async def connect(path: str) -> tuple[bool, object]:
        return await socket_for(outsider_client, "globex", path=path).connect()

    assert async_to_sync(connect)(run_path(run.id, "globex")) == (False, 4404)
    assert async_to_sync(connect)(run_path(uuid.uuid4(), "globex")) == (False, 4404)
