"""The one NATS JetStream client for connectors (nats-py): connect with a ``nats``
connection's settings, publish with de-duplication (``Nats-Msg-Id``), read a flow's durable
pull consumer, acknowledge, dead-letter to ``<subject>.dead``, report lag.

nats-py is asyncio-only; ``NatsSession`` owns one event loop and one connection and
offers the few synchronous calls the blocks and the consumer need.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from .client import StreamError

logger = logging.getLogger("flowgate.streams")

SUBJECT = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"


def durable_name(flow_id: str) -> str:
    """The durable pull consumer of one flow (NATS names allow no dots)."""
    return f"flowgate-{re.sub(r'[^A-Za-z0-9_-]', '-', flow_id)}"


def dead_subject(subject: str) -> str:
    return f"{subject}.dead"


@dataclass(frozen=True)
class Message:
    subject: str
    data: bytes
    sequence: int  # the stream sequence: the message's identity in its stream
    stream: str
    headers: dict[str, str]
    raw: Any


def _classify(error: BaseException, target: str, last: BaseException | None) -> StreamError:
    cause = last or error
    text = str(cause) or repr(cause)
    if "authorization" in text.lower() or "authentication" in text.lower():
        return StreamError("auth", f"authentication failed at {target}: {text}", retryable=False)
    if isinstance(cause, socket.gaierror):
        return StreamError("dns", f"DNS: cannot resolve {target}", retryable=True)
    if isinstance(cause, ConnectionRefusedError):
        return StreamError("refused", f"connection refused by {target}", retryable=True)
    if isinstance(cause, ssl.SSLError):
        return StreamError("tls", f"TLS failed with {target}: {text}", retryable=False)
    if isinstance(cause, TimeoutError | nats.errors.TimeoutError):
        return StreamError("timeout", f"{target} did not answer in time", retryable=True)
    if isinstance(cause, nats.js.errors.NotFoundError | nats.js.errors.NoStreamResponseError):
        return StreamError("error", f"{target}: {text}", retryable=False)
    return StreamError("error", f"{target}: {text}", retryable=True)


class NatsSession:
    """A connection to one NATS server; use as a context manager or ``close()``."""

    def __init__(self, config: Any, secrets: Mapping[str, str]) -> None:
        self.config, self.secrets = config, dict(secrets)
        self.target = f"{config.host}:{config.port}"
        self.loop = asyncio.new_event_loop()
        self._nc: Any = None
        self._subscriptions: dict[str, Any] = {}

    def __enter__(self) -> NatsSession:
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self, coroutine: Any) -> Any:
        try:
            return self.loop.run_until_complete(
                asyncio.wait_for(coroutine, self.config.timeout_seconds)
            )
        except StreamError:
            raise
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise _classify(error, self.target, None) from None

    def connect(self) -> None:
        if self._nc is not None:
            return
        errors: list[BaseException] = []

        async def on_error(error: BaseException) -> None:
            errors.append(error)

        options: dict[str, Any] = {
            "servers": [f"{'tls' if self.config.tls else 'nats'}://{self.target}"],
            "connect_timeout": self.config.timeout_seconds,
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,
            "error_cb": on_error,
            "name": "flowgate-connector",
        }
        if self.config.user:
            options["user"] = self.config.user
            options["password"] = self.secrets.get("password") or ""
        if self.secrets.get("token"):
            options["token"] = self.secrets["token"]
        if self.config.tls:
            options["tls"] = ssl.create_default_context()
        try:
            self._nc = self.loop.run_until_complete(
                asyncio.wait_for(nats.connect(**options), self.config.timeout_seconds + 1)
            )
        except (TimeoutError, nats.errors.Error, OSError) as error:
            self.close()  # the session is unusable: release its event loop now
            raise _classify(error, self.target, errors[-1] if errors else None) from None

    def close(self) -> None:
        try:
            if self._nc is not None and not self._nc.is_closed:
                self.loop.run_until_complete(self._nc.close())
        except Exception as error:  # closing is best effort
            logger.debug("closing the NATS connection to %s: %s", self.target, error)
        finally:
            self._nc = None
            if not self.loop.is_closed():
                self.loop.close()

    @property
    def js(self) -> Any:
        return self._nc.jetstream(timeout=self.config.timeout_seconds)

    def server_version(self) -> str:
        self._run(self.js.account_info())  # proves JetStream is enabled for the account
        return str(self._nc.connected_server_version)

    def publish(
        self, subject: str, data: bytes, *, msg_id: str, correlation_id: str = ""
    ) -> tuple[str, int, bool]:
        """JetStream publish, de-duplicated by the stream on ``Nats-Msg-Id``; returns
        (stream, sequence, duplicate)."""
        headers = {"Nats-Msg-Id": msg_id}
        if correlation_id:
            headers["Flowgate-Correlation-Id"] = correlation_id
        ack = self._run(self.js.publish(subject, data, headers=headers))
        return ack.stream, ack.seq, bool(ack.duplicate)

    def dead_letter(self, message: Message, reason: str) -> None:
        """Copy a message that cannot be turned into a run to ``<subject>.dead`` with why;
        kept by JetStream when a stream takes that subject, else a plain NATS message."""
        headers = {
            "Flowgate-Reason": reason[:1000],
            "Flowgate-Subject": message.subject,
            "Flowgate-Stream": message.stream,
            "Flowgate-Sequence": str(message.sequence),
            "Nats-Msg-Id": f"dead:{message.stream}:{message.sequence}",
        }
        subject = dead_subject(message.subject)
        try:
            self._run(self.js.publish(subject, message.data, headers=headers))
        except StreamError:
            self._run(self._nc.publish(subject, message.data, headers=headers))
            self._run(self._nc.flush())

    def _subscription(self, subject: str, durable: str, start: str, ack_wait: float) -> Any:
        if durable not in self._subscriptions:
            js = self.js

            async def subscribe() -> Any:
                stream = await js.find_stream_name_by_subject(subject)
                config = ConsumerConfig(
                    durable_name=durable,
                    deliver_policy=DeliverPolicy.ALL if start == "beginning" else DeliverPolicy.NEW,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=ack_wait,
                    filter_subject=subject,
                )
                return await js.pull_subscribe(subject, durable, stream=stream, config=config)

            self._subscriptions[durable] = self._run(subscribe())
        return self._subscriptions[durable]

    def fetch(
        self, subject: str, durable: str, *, start: str, ack_wait: float, batch: int, wait: float
    ) -> list[Message]:
        subscription = self._subscription(subject, durable, start, ack_wait)

        async def fetch() -> list[Any]:
            try:
                return await subscription.fetch(batch, timeout=wait)
            except nats.errors.TimeoutError:
                return []

        return [
            Message(
                subject=raw.subject,
                data=raw.data,
                sequence=raw.metadata.sequence.stream,
                stream=raw.metadata.stream,
                headers=dict(raw.headers or {}),
                raw=raw,
            )
            for raw in self._run(fetch())
        ]

    def ack(self, message: Message) -> None:
        self._run(message.raw.ack_sync())

    def lag(self, subject: str, durable: str) -> dict[str, Any]:
        js = self.js

        async def info() -> dict[str, Any]:
            stream = await js.find_stream_name_by_subject(subject)
            try:
                consumer = await js.consumer_info(stream, durable)
            except nats.js.errors.NotFoundError:
                return {"lag": None, "pending": None, "dead": None}
            dead = 0
            try:
                dead_stream = await js.find_stream_name_by_subject(dead_subject(subject))
                state = (
                    await js.stream_info(dead_stream, subjects_filter=dead_subject(subject))
                ).state
                dead = int((state.subjects or {}).get(dead_subject(subject), 0))
            except nats.js.errors.NotFoundError:
                pass  # no stream keeps the dead letters: they were plain NATS messages
            return {"lag": consumer.num_pending, "pending": consumer.num_ack_pending, "dead": dead}

        return dict(self._run(info()))


def payload(message: Message) -> Any:
    """The message body as JSON; ValueError when it is not."""
    return json.loads(message.data.decode("utf-8"))
