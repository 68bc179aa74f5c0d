"""The workspace event stream through the real ASGI stack (session auth, origin check) and
the real Redis channel layer."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils.module_loading import import_string

from apps.core.events import publish_workspace_event
from apps.shell import consumers
from studio.asgi import application
from studio.env import channel_layer
from tests.support.processes import free_port
from tests.support.waiting import wait_for


def socket_for(client: Client | None, slug: str, path: str = "") -> WebsocketCommunicator:
    """A WebSocket to the workspace's event stream (or ``path``) with the client's session."""
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if client is not None:
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path or f"/ws/w/{slug}/events/", headers=headers)


def test_member_receives_events_published_for_their_workspace(
    transactional_db, builder_client, workspace
):
    async def scenario() -> dict:
        socket = socket_for(builder_client, "acme")
        connected, _ = await socket.connect()
        assert connected
        await sync_to_async(publish_workspace_event)(
            workspace.id, {"type": "run.updated", "toast": "Run finished"}
        )
        received = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return received

    assert async_to_sync(scenario)() == {"type": "run.updated", "toast": "Run finished"}


def test_member_answers_pings(transactional_db, builder_client, workspace):
    async def scenario() -> dict:
        socket = socket_for(builder_client, "acme")
        await socket.connect()
        await socket.send_json_to({"type": "ping"})
        answer = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return answer

    assert async_to_sync(scenario)() == {"type": "pong"}


def test_non_member_is_refused(transactional_db, outsider_client, workspace):
    async def scenario() -> tuple[bool, object]:
        return await socket_for(outsider_client, "acme").connect()

    assert async_to_sync(scenario)() == (False, 4404)


def test_anonymous_visitor_is_refused(transactional_db, workspace):
    async def scenario() -> tuple[bool, object]:
        return await socket_for(None, "acme").connect()

    assert async_to_sync(scenario)() == (False, 4401)


def test_events_of_one_workspace_never_reach_another(
    transactional_db, builder_client, outsider_client, workspace, other_workspace
):
    async def scenario() -> tuple[bool, dict]:
        outsider_socket = socket_for(outsider_client, "globex")
        member_socket = socket_for(builder_client, "acme")
        await outsider_socket.connect()
        await member_socket.connect()
        await sync_to_async(publish_workspace_event)(workspace.id, {"type": "secret"})
        member_got = await member_socket.receive_json_from(timeout=5)
        outsider_got_nothing = await outsider_socket.receive_nothing(timeout=0.5)
        await outsider_socket.disconnect()
        await member_socket.disconnect()
        return outsider_got_nothing, member_got

    assert async_to_sync(scenario)() == (True, {"type": "secret"})


def test_events_published_together_arrive_one_by_one_in_their_order(
    transactional_db, builder_client, workspace
):
    """A burst (a run's steps, released by one commit) travels as one message per group;
    the page still receives each event, in order."""
    burst = [{"type": "run.step", "node": f"n{index}"} for index in range(5)]

    def publish_burst() -> None:
        for event in burst[:-1]:
            publish_workspace_event(workspace.id, event)
        publish_workspace_event(workspace.id, burst[-1], wait=True)

    async def scenario() -> list[dict]:
        socket = socket_for(builder_client, "acme")
        await socket.connect()
        await sync_to_async(publish_burst)()
        received = [await socket.receive_json_from(timeout=5) for _ in burst]
        assert await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()
        return received

    assert async_to_sync(scenario)() == burst


def test_live_events_stay_within_their_redis_database():
    """Redis pub/sub ignores database numbers: two deployments sharing a server through
    databases 3 and 4 must not hear each other's events."""
    host = settings.REDIS_URL.rsplit("/", 1)[0]
    group = f"workspace.{uuid.uuid4()}"

    async def heard_by(listener_database: int, sender_database: int) -> list[dict]:
        listener = channel_layer_from(f"{host}/{listener_database}")
        sender = channel_layer_from(f"{host}/{sender_database}")
        channel = await listener.new_channel()
        await listener.group_add(group, channel)
        await sender.group_send(group, {"type": "workspace.event", "event": {"n": 1}})
        try:
            return [await asyncio.wait_for(listener.receive(channel), timeout=1)]
        except TimeoutError:
            return []
        finally:
            await listener.flush()
            await sender.flush()

    assert async_to_sync(heard_by)(3, 4) == []
    assert async_to_sync(heard_by)(4, 4) == [{"type": "workspace.event", "event": {"n": 1}}]


def channel_layer_from(redis_url: str):
    config = channel_layer(redis_url)
    return import_string(config["BACKEND"])(**config["CONFIG"])


@pytest.fixture
def private_redis(settings):
    """A Redis server of this test's own, as the channel layer's, that it may restart."""
    port = free_port()

    def start() -> subprocess.Popen:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _answers(port), timeout=10, interval=0.05)
        return server

    servers = [start()]
    settings.CHANNEL_LAYERS = {"default": channel_layer(f"redis://127.0.0.1:{port}/0")}
    channel_layers.backends.clear()
    yield lambda: (servers[-1].kill(), servers[-1].wait(), servers.append(start()))
    channel_layers.backends.clear()
    for server in servers:
        server.kill()
        server.wait()


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port).ping()
    except redis.ConnectionError:
        return False


def test_a_socket_whose_subscription_died_with_redis_is_closed_so_the_page_reconnects(
    transactional_db, builder_client, workspace, private_redis, monkeypatch
):
    """Redis pub/sub forgets subscriptions on restart without a word: the socket notices
    its own echo did not come back and closes with 1012; a new socket hears events."""
    monkeypatch.setattr(consumers, "LIVENESS_SECONDS", 0.3)
    restart_redis = private_redis

    async def scenario() -> tuple[bool, dict, dict]:
        socket = socket_for(builder_client, "acme")
        assert (await socket.connect())[0]
        await asyncio.sleep(1)  # three echoes came back
        alive = await socket.receive_nothing(timeout=0.1)
        await sync_to_async(restart_redis)()
        closed = await socket.receive_output(timeout=5)
        heard = {}
        for _ in range(20):  # as the page does: reconnect until it is subscribed again
            again = socket_for(builder_client, "acme")
            try:
                if (await again.connect(timeout=2))[0]:
                    await get_channel_layer().group_send(
                        f"workspace.{workspace.id}",
                        {"type": "workspace.event", "event": {"type": "run.updated"}},
                    )
                    heard = await again.receive_json_from(timeout=2)
                    await again.disconnect()
                    break
            except Exception:
                await asyncio.sleep(0.2)
        return alive, closed, heard

    alive, closed, heard = async_to_sync(scenario)()
    assert alive
    assert closed == {"type": "websocket.close", "code": 1012}
    assert heard == {"type": "run.updated"}
