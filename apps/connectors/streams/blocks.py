"""connector.stream.publish and trigger.stream: Redis Streams or NATS JetStream.

``connector.stream.publish`` adds one JSON message (field ``data``) and is idempotent: the
step's idempotency key is remembered next to the stream in the same atomic script, so a
retry returns the first message's id instead of adding a second. ``trigger.stream``
starts a run per message; ``manage.py streams consume`` reads for it (see consumer.py).

On a ``nats`` connection the stream name is a subject: publishing is a JetStream publish
whose ``Nats-Msg-Id`` header is the step's idempotency key, so the stream drops a retry's
duplicate (within its de-duplication window) and answers with the first sequence.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import redis
from pydantic import Field

from apps.blocks.base import (
    Activation,
    Block,
    BlockConfig,
    BlockContext,
    BlockError,
    FlowAddress,
    Result,
)
from apps.blocks.expressions import Expression, Template

from ..types import connection_reference
from . import client
from . import nats as nats_client

STREAM_NAME = r"^[\w.:{}-]{1,200}$"


class PublishConfig(BlockConfig):
    connection: str = Field(
        description="A Redis Streams or NATS JetStream connection.",
        json_schema_extra=connection_reference("redis", "nats"),
    )
    stream: Template = Field(
        description="Stream name (a subject for NATS); {{ expressions }} are filled in."
    )
    payload: dict[str, Expression] | Expression = Field(
        description="The message: an object of expressions, or one expression; sent as JSON."
    )
    max_length: int = Field(
        default=100_000, ge=1, description="Trim the stream to about this many messages."
    )


class StreamPublishBlock(Block):
    """Publish a JSON message to a Redis stream, exactly once per step."""

    key = "connector.stream.publish"
    title = "Publish to stream"
    category = "connector"
    calls_out = True
    icon = "send"
    Config = PublishConfig
    side_effect = True
    idempotent = True  # the idempotency key is checked atomically with the XADD
    max_attempts = 3

    def execute(self, ctx: BlockContext, config: PublishConfig, input: Any) -> Result:
        stream = ctx.render(config.stream)
        if not stream or len(stream) > 200:
            raise BlockError(f"invalid stream name {stream!r}", retryable=False)
        data = json.dumps(ctx.evaluate_tree(config.payload), separators=(",", ":"))
        fields = {
            "data": data,
            "idempotency_key": ctx.idempotency_key,
            "correlation_id": ctx.correlation_id,
        }
        if ctx.dry_run:
            description = {"dry_run": True, "stream": stream, "fields": fields}
            return Result(output=description, meta={"dry_run": True})
        connection = ctx.service("connections").get(config.connection, type=("redis", "nats"))
        if connection.type == "nats":
            return _publish_nats(connection, stream, data, ctx.idempotency_key, ctx.correlation_id)
        try:
            with client.connect(connection.config, connection.secrets) as redis_client:
                message_id, created = client.publish_once(
                    redis_client,
                    stream=stream,
                    fields=fields,
                    idempotency_key=ctx.idempotency_key,
                    max_length=config.max_length,
                )
        except redis.RedisError as error:
            failure = client.classify(error, f"{connection.config.host}:{connection.config.port}")
            raise BlockError(
                f"not published ({failure.stage}): {failure.message}", retryable=failure.retryable
            ) from None
        return Result(
            output={"stream": stream, "id": message_id, "duplicate": not created},
            meta={"stream": stream, "message_id": message_id},
        )


def _publish_nats(
    connection: Any, subject: str, data: str, idempotency_key: str, correlation_id: str
) -> Result:
    if not re.match(nats_client.SUBJECT, subject):
        raise BlockError(f"invalid NATS subject {subject!r}", retryable=False)
    try:
        with nats_client.NatsSession(connection.config, connection.secrets) as session:
            stream, sequence, duplicate = session.publish(
                subject, data.encode(), msg_id=idempotency_key, correlation_id=correlation_id or ""
            )
    except client.StreamError as error:
        raise BlockError(
            f"not published ({error.stage}): {error.message}", retryable=error.retryable
        ) from None
    return Result(
        output={"stream": subject, "id": str(sequence), "duplicate": duplicate},
        meta={"stream": subject, "jetstream": stream, "sequence": sequence},
    )


class StreamTriggerConfig(BlockConfig):
    connection: str = Field(
        description="A Redis Streams or NATS JetStream connection.",
        json_schema_extra=connection_reference("redis", "nats"),
    )
    stream: str = Field(
        pattern=STREAM_NAME,
        description="The stream to consume (for NATS: a subject a JetStream stream takes).",
    )
    start: Literal["new", "beginning"] = Field(
        default="new", description="On first start: only new messages, or the whole stream."
    )
    field: str = Field(default="data", description="The message field holding the JSON payload.")


class StreamTrigger(Block):
    """Start the flow for each message on a Redis stream (consumer group, acked after the
    run is created; messages that are not JSON go to <stream>:dead) or a NATS subject
    (durable pull consumer; not JSON → <subject>.dead)."""

    key = "trigger.stream"
    title = "Stream message"
    category = "trigger"
    icon = "radio"
    Config = StreamTriggerConfig

    @classmethod
    def activation(cls, config: StreamTriggerConfig, flow: FlowAddress) -> Activation:
        return Activation("stream", config.stream, config.model_dump())

    def execute(self, ctx: BlockContext, config: StreamTriggerConfig, input: Any) -> Result:
        return Result(output=input)
