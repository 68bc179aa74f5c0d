"""The stream consumer behind ``trigger.stream`` (``manage.py streams consume``).

Each published flow whose trigger is ``trigger.stream`` gets its own consumer group
(``flowgate.<flow id>``), so every flow sees every message. For each message the consumer
creates the run (idempotency key = stream + message id, or the publisher's
``idempotency_key`` field), commits, and only then acknowledges it. So:

- a consumer that dies after reading and before acking loses nothing: on restart it
  re-reads its own pending messages, and messages left pending by a consumer that never
  came back are claimed after ``STREAM_CLAIM_IDLE_SECONDS``;
- a message delivered twice finds the run already created and is just acknowledged;
- a message that is not JSON (or lacks the payload field) is copied to ``<stream>:dead``
  with the reason and acknowledged, and the consumer keeps going.

On a ``nats`` connection the stream is a subject: each flow gets a durable JetStream pull
consumer (``flowgate-<flow id>``, explicit acks, redelivered after
``STREAM_CLAIM_IDLE_SECONDS`` when not acked), the idempotency key is the JetStream stream
and sequence, the ack is sent (and confirmed) only after the run is committed, and
messages that are not JSON are copied to ``<subject>.dead`` with the reason.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, transaction

from apps.blocks.base import BlockError
from apps.flows.models import Flow
from apps.flows.subscriptions import subscriptions_of
from apps.runs.blocks import envelope
from apps.runs.models import Trigger
from apps.runs.services import RunError, run_start

from ..services import WorkspaceConnections
from . import client
from . import nats as nats_client

logger = logging.getLogger("flowgate.streams")
BATCH = 50


@dataclass(frozen=True)
class Subscription:
    flow_id: str
    workspace_id: str
    connection: str
    stream: str
    start: str
    field: str

    @property
    def group(self) -> str:
        return f"flowgate.{self.flow_id}"


def subscriptions() -> list[Subscription]:
    """Every published, active flow started by a stream message: the ``stream``
    subscription rows that publishing writes (one query, no flow is parsed)."""
    return [
        Subscription(
            flow_id=str(row.flow_id),
            workspace_id=str(row.workspace_id),
            connection=row.settings["connection"],
            stream=row.settings["stream"],
            start=row.settings.get("start", "new"),
            field=row.settings.get("field", "data"),
        )
        for row in subscriptions_of("stream")
    ]


@dataclass(frozen=True)
class Outcome:
    message_id: str
    action: str  # "started", "duplicate", "dead", "failed" (left pending, tried again)
    run_id: str | None = None


class StreamConsumer:
    """One consumer process. ``poll_once()`` does one round over every subscription and
    returns what it did; ``run()`` loops until ``stop()``."""

    def __init__(self, *, name: str | None = None, block_ms: int | None = None) -> None:
        self.name = name or socket.gethostname()
        flowgate = settings.FLOWGATE
        self.block_ms = int(block_ms or flowgate["STREAM_BLOCK_MILLISECONDS"])
        self.claim_idle_ms = int(flowgate["STREAM_CLAIM_IDLE_SECONDS"]) * 1000
        self._clients: dict[tuple[str, str], redis.Redis] = {}
        self._types: dict[tuple[str, str], str] = {}
        self._nats: dict[tuple[str, str], nats_client.NatsSession] = {}
        self._groups: set[tuple[str, str]] = set()
        self._stopping = False
        # Failed attempts per (group, message id): a message no run can be started from is
        # dead-lettered after MAX_DELIVERIES tries instead of blocking its flow forever.
        self._failures: dict[tuple[str, str], int] = {}
        self.max_failures = int(flowgate["MAX_DELIVERIES"])

    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        logger.info("stream consumer %s started", self.name)
        while not self._stopping:
            try:
                self.poll_once(block=True)
            except Exception:  # the consumer must outlive any one bad round
                logger.exception("stream consumer round failed; retrying")
                time.sleep(self.block_ms / 1000)
        for redis_client in self._clients.values():
            redis_client.close()
        for session in self._nats.values():
            session.close()

    def poll_once(self, *, block: bool = False) -> list[Outcome]:
        current = subscriptions()
        outcomes: list[Outcome] = []
        for subscription in current:
            try:
                if self._type(subscription) == "nats":
                    outcomes.extend(self._poll_nats(subscription, wait=0.05))
                else:
                    outcomes.extend(self._poll(subscription))
            except client.StreamError as error:
                logger.warning(
                    "subject %s (flow %s): %s", subscription.stream, subscription.flow_id, error
                )
                self._drop_nats(subscription)
            except (redis.RedisError, BlockError) as error:
                logger.warning(
                    "stream %s (flow %s): %s", subscription.stream, subscription.flow_id, error
                )
                self._clients.pop((subscription.workspace_id, subscription.connection), None)
            except DatabaseError as error:
                # Nothing was acknowledged: the message stays pending and is retried.
                logger.warning("stream %s: database unavailable: %s", subscription.stream, error)
        if block and not outcomes:
            if not current:
                time.sleep(self.block_ms / 1000)
            elif len(current) == 1:
                self._wait_for_new(current[0])
            else:
                time.sleep(min(self.block_ms, 100) / 1000)
        return outcomes

    def _type(self, subscription: Subscription) -> str:
        key = (subscription.workspace_id, subscription.connection)
        if key not in self._types:
            handle = WorkspaceConnections(subscription.workspace_id).get(
                subscription.connection, type=("redis", "nats")
            )
            self._types[key] = handle.type
        return self._types[key]

    def _drop_nats(self, subscription: Subscription) -> None:
        key = (subscription.workspace_id, subscription.connection)
        self._types.pop(key, None)
        session = self._nats.pop(key, None)
        if session is not None:
            session.close()

    def _session(self, subscription: Subscription) -> nats_client.NatsSession:
        key = (subscription.workspace_id, subscription.connection)
        if key not in self._nats:
            handle = WorkspaceConnections(subscription.workspace_id).get(
                subscription.connection, type="nats"
            )
            session = nats_client.NatsSession(handle.config, handle.secrets)
            session.connect()
            self._nats[key] = session
        return self._nats[key]

    def _poll_nats(self, subscription: Subscription, *, wait: float) -> list[Outcome]:
        session = self._session(subscription)
        messages = session.fetch(
            subscription.stream,
            nats_client.durable_name(subscription.flow_id),
            start=subscription.start,
            ack_wait=self.claim_idle_ms / 1000,
            batch=BATCH,
            wait=wait,
        )
        return [self._handle_nats_safely(session, subscription, message) for message in messages]

    def _handle_nats_safely(
        self,
        session: nats_client.NatsSession,
        subscription: Subscription,
        message: nats_client.Message,
    ) -> Outcome:
        message_id = str(message.sequence)
        try:
            try:
                body = nats_client.payload(message)
            except ValueError as error:
                return self._dead_nats(session, message, f"not JSON: {error}")
            key = f"nats:{message.stream}:{message.sequence}"
            started = self._start_run(
                subscription,
                body,
                key=key,
                message_id=message_id,
                correlation_id=message.headers.get("Flowgate-Correlation-Id"),
            )
            session.ack(message)  # committed: the run exists durably, so the message may go
            return Outcome(
                message_id, "started" if started.created else "duplicate", str(started.run.id)
            )
        except (client.StreamError, DatabaseError):
            raise  # the infrastructure, not the message: redelivered after ack_wait
        except RunError as error:
            return self._dead_nats(session, message, str(error))
        except Exception as error:
            failure_key = (subscription.group, f"nats:{message.stream}:{message.sequence}")
            failures = self._failures[failure_key] = self._failures.get(failure_key, 0) + 1
            logger.exception(
                "subject %s message %s: attempt %d failed",
                subscription.stream,
                message_id,
                failures,
            )
            if failures < self.max_failures:
                return Outcome(message_id, "failed")
            del self._failures[failure_key]
            reason = f"no run could be started after {failures} attempts: {error}"
            return self._dead_nats(session, message, reason)

    def _dead_nats(
        self, session: nats_client.NatsSession, message: nats_client.Message, reason: str
    ) -> Outcome:
        session.dead_letter(message, reason)
        session.ack(message)
        logger.warning(
            "subject %s message %s dead-lettered: %s", message.subject, message.sequence, reason
        )
        return Outcome(str(message.sequence), "dead")

    def _start_run(
        self,
        subscription: Subscription,
        body: Any,
        *,
        key: str,
        message_id: str,
        correlation_id: str | None,
    ) -> Any:
        flow = Flow.objects.select_related("latest_version").get(pk=subscription.flow_id)
        with transaction.atomic():
            return run_start(
                flow=flow,
                trigger=Trigger.STREAM,
                payload=envelope(body, stream=subscription.stream, message_id=message_id),
                idempotency_key=f"stream:{subscription.stream}:{key}"[:200],
                correlation_id=correlation_id,
            )

    def _client(self, subscription: Subscription) -> redis.Redis:
        key = (subscription.workspace_id, subscription.connection)
        if key not in self._clients:
            handle = WorkspaceConnections(subscription.workspace_id).get(
                subscription.connection, type="redis"
            )
            self._clients[key] = client.connect(handle.config, handle.secrets)
        redis_client = self._clients[key]
        group_key = (subscription.stream, subscription.group)
        if group_key not in self._groups:
            client.ensure_group(
                redis_client, subscription.stream, subscription.group, start=subscription.start
            )
            self._groups.add(group_key)
        return redis_client

    def _poll(self, subscription: Subscription) -> list[Outcome]:
        redis_client = self._client(subscription)
        messages = list(self._pending(redis_client, subscription))
        if not messages:
            messages = self._read(redis_client, subscription, ">", block=None)
        return [self._handle_safely(redis_client, subscription, *message) for message in messages]

    def _pending(self, redis_client: redis.Redis, subscription: Subscription) -> Iterable[Any]:
        # Our own unacknowledged messages first (we crashed before acking), then messages
        # another consumer left pending for too long.
        yield from self._read(redis_client, subscription, "0", block=None)
        _, claimed, *_ = redis_client.xautoclaim(
            subscription.stream,
            subscription.group,
            self.name,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=BATCH,
        )
        yield from ((message_id, fields) for message_id, fields in claimed if fields is not None)

    def _read(
        self,
        redis_client: redis.Redis,
        subscription: Subscription,
        cursor: str,
        *,
        block: int | None,
    ) -> list[tuple[str, dict[str, str]]]:
        answer: Any = redis_client.xreadgroup(
            subscription.group, self.name, {subscription.stream: cursor}, count=BATCH, block=block
        )
        return [
            (message_id, fields)
            for _, entries in answer or []
            for message_id, fields in entries
            if fields
        ]

    def _wait_for_new(self, subscription: Subscription) -> None:
        # One subscription: block on the server instead of polling.
        try:
            if self._type(subscription) == "nats":
                self._poll_nats(subscription, wait=self.block_ms / 1000)
                return
            redis_client = self._client(subscription)
            for message in self._read(redis_client, subscription, ">", block=self.block_ms):
                self._handle_safely(redis_client, subscription, *message)
        except (redis.RedisError, client.StreamError, BlockError, DatabaseError) as error:
            logger.warning("stream %s: %s", subscription.stream, error)
            self._drop_nats(subscription)
            time.sleep(self.block_ms / 1000)

    def _handle_safely(
        self,
        redis_client: redis.Redis,
        subscription: Subscription,
        message_id: str,
        fields: dict[str, str],
    ) -> Outcome:
        try:
            return self._handle(redis_client, subscription, message_id, fields)
        except (redis.RedisError, DatabaseError):
            raise  # the infrastructure, not the message: retried as it is
        except RunError as error:
            return self._dead(redis_client, subscription, message_id, fields, str(error))
        except Exception as error:
            key = (subscription.group, message_id)
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            logger.exception(
                "stream %s message %s: attempt %d failed", subscription.stream, message_id, failures
            )
            if failures < self.max_failures:
                return Outcome(message_id, "failed")
            del self._failures[key]
            reason = f"no run could be started after {failures} attempts: {error}"
            return self._dead(redis_client, subscription, message_id, fields, reason)

    def _handle(
        self,
        redis_client: redis.Redis,
        subscription: Subscription,
        message_id: str,
        fields: dict[str, str],
    ) -> Outcome:
        try:
            body = json.loads(fields[subscription.field])
        except KeyError:
            return self._dead(
                redis_client, subscription, message_id, fields, f"no {subscription.field!r} field"
            )
        except ValueError as error:
            return self._dead(
                redis_client,
                subscription,
                message_id,
                fields,
                f"{subscription.field!r} is not JSON: {error}",
            )
        started = self._start_run(
            subscription,
            body,
            key=fields.get("idempotency_key") or message_id,
            message_id=message_id,
            correlation_id=fields.get("correlation_id"),
        )
        # Committed: the run exists durably, so the message may go.
        redis_client.xack(subscription.stream, subscription.group, message_id)
        return Outcome(
            message_id, "started" if started.created else "duplicate", str(started.run.id)
        )

    def _dead(
        self,
        redis_client: redis.Redis,
        subscription: Subscription,
        message_id: str,
        fields: dict[str, str],
        reason: str,
    ) -> Outcome:
        client.dead_letter(
            redis_client,
            stream=subscription.stream,
            message_id=message_id,
            fields=fields,
            reason=reason,
        )
        redis_client.xack(subscription.stream, subscription.group, message_id)
        logger.warning(
            "stream %s message %s dead-lettered: %s", subscription.stream, message_id, reason
        )
        return Outcome(message_id, "dead")


def stream_status(
    *, workspace_id: Any = None, connection: str | None = None
) -> list[dict[str, Any]]:
    """Each subscription (optionally of one workspace's connection) with its consumer
    group's lag, pending count and dead-lettered messages."""
    rows = []
    for subscription in subscriptions():
        if workspace_id is not None and subscription.workspace_id != str(workspace_id):
            continue
        if connection is not None and subscription.connection != connection:
            continue
        row: dict[str, Any] = {
            "flow": subscription.flow_id,
            "stream": subscription.stream,
            "group": subscription.group,
        }
        try:
            handle = WorkspaceConnections(subscription.workspace_id).get(
                subscription.connection, type=("redis", "nats")
            )
            if handle.type == "nats":
                row["group"] = nats_client.durable_name(subscription.flow_id)
                with nats_client.NatsSession(handle.config, handle.secrets) as session:
                    row.update(session.lag(subscription.stream, row["group"]))
                row["dead_stream"] = nats_client.dead_subject(subscription.stream)
                rows.append(row)
                continue
            with client.connect(handle.config, handle.secrets) as redis_client:
                row.update(client.group_lag(redis_client, subscription.stream, subscription.group))
                row["dead"] = redis_client.xlen(f"{subscription.stream}:dead")
            row["dead_stream"] = f"{subscription.stream}:dead"
        except (redis.RedisError, client.StreamError, BlockError) as error:
            row["error"] = str(error)
        rows.append(row)
    return rows
