"""The web process's HTTP handler: each request's synchronous part runs on a thread of a
pool that lives as long as the process (no thread started per request), and answers as
Django would."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_started
from django.db import connections

from studio import handlers
from tests.runs.w1 import w1_flow

pytestmark = pytest.mark.django_db(transaction=True)


async def call(application, path: str, body: bytes = b"", cookie: str = "") -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST" if body else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            *([(b"cookie", cookie.encode())] if cookie else []),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(10)
    content = b""
    while True:
        message = await communicator.receive_output(10)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start["status"], content


def test_requests_run_on_the_process_pool_not_on_a_thread_each(
    workspace, builder_user, monkeypatch
):
    # Connections opened by pooled threads close after each request here, so the test
    # database can be dropped at the end of the session.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    flow = w1_flow(workspace, builder_user)
    application = handlers.http_application()
    threads: list[str] = []

    def record(**_: object) -> None:
        threads.append(threading.current_thread().name)

    request_started.connect(record)
    try:
        answers = [
            async_to_sync(call)(
                application,
                f"/hooks/{flow.webhook_token}",
                json.dumps({"amount": amount, "customer": "c"}).encode(),
            )
            for amount in (50, 5000, 50, 5000, 50, 5000)
        ]
        on_the_fast_path = list(threads)
        pages = [async_to_sync(call)(application, "/accounts/login/") for _ in range(7)]
    finally:
        request_started.disconnect(record)
    assert [(status, json.loads(body)["decision"]) for status, body in answers] == [
        (200, "approve"),
        (200, "reject"),
    ] * 3
    # The sync W1 webhook is run by the batcher (apps/runs/ingress.py): no request thread.
    assert on_the_fast_path == []
    assert [status for status, _ in pages] == [200] * 7
    assert len(threads) == 7
    assert all(name.startswith("flowgate-web") for name in threads)
    assert len(set(threads)) <= handlers.WEB_THREADS


def test_a_streaming_export_is_sent_whole(admin_client, workspace, monkeypatch):
    from django.urls import reverse

    from apps.audit.services import audit_record

    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    audit_record(workspace_id=workspace.id, action="flow.published", summary="v1")
    path = reverse("audit:export_csv", kwargs={"workspace_slug": "acme"})
    cookie = f"sessionid={admin_client.cookies['sessionid'].value}"
    status, body = async_to_sync(call)(handlers.http_application(), path, cookie=cookie)
    assert status == 200
    header, row = body.decode().splitlines()[:2]
    assert header.startswith("sequence,") and row.startswith("1,") and "flow.published" in row
