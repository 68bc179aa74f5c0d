"""The one Redis Streams client for connectors: connect with a connection's settings,
publish exactly once per idempotency key, read with consumer groups, acknowledge,
dead-letter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

# Publishing and remembering the idempotency key happen in one atomic script, so a retried
# step never adds a second message: it gets the first message's id back.
PUBLISH_ONCE = """
local existing = redis.call('GET', KEYS[2])
if existing then return {0, existing} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], id, 'EX', ARGV[2])
return {1, id}
"""
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600


class StreamError(Exception):
    """``stage``: dns, refused, timeout, tls, auth, error."""

    def __init__(self, stage: str, message: str, *, retryable: bool):
        super().__init__(message)
        self.stage, self.message, self.retryable = stage, message, retryable


def connect(config: Any, secrets: Mapping[str, str]) -> redis.Redis:
    return redis.Redis(
        host=config.host,
        port=config.port,
        db=config.db,
        username=config.username or None,
        password=secrets.get("password") or None,
        ssl=config.tls,
        socket_timeout=config.timeout_seconds,
        socket_connect_timeout=config.timeout_seconds,
        decode_responses=True,
    )


def classify(error: redis.RedisError, target: str) -> StreamError:
    text = str(error)
    if isinstance(error, redis.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text:
        return StreamError("auth", f"authentication failed at {target}: {text}", retryable=False)
    if "AUTH" in text and "without any password configured" in text:
        return StreamError("auth", f"authentication failed at {target}: {text}", retryable=False)
    if isinstance(error, redis.TimeoutError):
        return StreamError("timeout", f"{target} did not answer in time", retryable=True)
    if isinstance(error, redis.ConnectionError):
        lowered = text.lower()
        if "name or service not known" in lowered or "temporary failure in name" in lowered:
            return StreamError("dns", f"DNS: cannot resolve {target}", retryable=True)
        if "refused" in lowered:
            return StreamError("refused", f"connection refused by {target}", retryable=True)
        if "ssl" in lowered:
            return StreamError("tls", f"TLS failed with {target}: {text}", retryable=False)
        return StreamError("error", f"could not reach {target}: {text}", retryable=True)
    return StreamError("error", f"{target}: {text}", retryable=False)


def publish_once(
    client: redis.Redis,
    *,
    stream: str,
    fields: Mapping[str, str],
    idempotency_key: str,
    max_length: int,
) -> tuple[str, bool]:
    """Add ``fields`` to ``stream`` unless ``idempotency_key`` was published already;
    returns (message id, created)."""
    # The hash tag keeps both keys in one slot on a Redis Cluster.
    marker = f"{{{stream}}}:flowgate-published:{idempotency_key}"
    flat = [item for pair in fields.items() for item in pair]
    created, message_id = client.eval(
        PUBLISH_ONCE, 2, stream, marker, max_length, IDEMPOTENCY_TTL_SECONDS, *flat
    )
    return message_id, bool(created)


def ensure_group(client: redis.Redis, stream: str, group: str, *, start: str) -> None:
    try:
        client.xgroup_create(stream, group, id="0" if start == "beginning" else "$", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def dead_letter(
    client: redis.Redis, *, stream: str, message_id: str, fields: Mapping[str, str], reason: str
) -> str:
    """Copy a message that cannot be turned into a run to ``<stream>:dead`` with why."""
    return str(
        client.xadd(
            f"{stream}:dead",
            {
                "stream": stream,
                "message_id": message_id,
                "reason": reason,
                "fields": json.dumps(dict(fields)),
            },
            maxlen=100_000,
            approximate=True,
        )
    )


def group_lag(client: redis.Redis, stream: str, group: str) -> dict[str, Any]:
    """Messages not yet delivered to the group (``lag``) and delivered but unacknowledged
    (``pending``)."""
    for info in client.xinfo_groups(stream):
        if info["name"] == group:
            return {"lag": info.get("lag"), "pending": info.get("pending")}
    return {"lag": None, "pending": None}
