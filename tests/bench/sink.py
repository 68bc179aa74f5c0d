"""A far end for benchmarks: an ASGI app answering every request with a small JSON body
after ``SINK_DELAY_MS`` milliseconds. Run under uvicorn (keep-alive, asyncio), so the sink
itself holds thousands of requests in flight without a thread each."""

from __future__ import annotations

import asyncio
import os

DELAY = float(os.environ.get("SINK_DELAY_MS", "1")) / 1000
BODY = b'{"ok": true, "score": 0.42}'


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await asyncio.sleep(DELAY)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
