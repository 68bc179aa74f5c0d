"""The ``redis`` connection type (Redis Streams)."""

from __future__ import annotations

from collections.abc import Mapping

import redis
from pydantic import Field

from ..types import ConnectionConfig, ConnectionType, SecretField, TestOutcome
from . import client


class RedisConfig(ConnectionConfig):
    host: str = Field(min_length=1)
    port: int = Field(default=6379, ge=1, le=65535)
    db: int = Field(default=0, ge=0, le=15, title="Database", description="Database number.")
    username: str = Field(default="", description="ACL user; blank for the default user.")
    tls: bool = Field(default=False, title="Use TLS", description="Connect with TLS (rediss://).")
    timeout_seconds: int = Field(default=10, ge=1, le=120)


class RedisConnection(ConnectionType):
    key = "redis"
    title = "Redis Streams"
    description = "A Redis server whose streams flows publish to and are triggered from."
    Config = RedisConfig
    secret_fields = (SecretField("password", "Password"),)

    @classmethod
    def test(cls, config: RedisConfig, secrets: Mapping[str, str]) -> TestOutcome:
        target = f"{config.host}:{config.port}"
        try:
            with client.connect(config, secrets) as connection:
                version = connection.info("server").get("redis_version", "?")
        except redis.RedisError as error:
            failure = client.classify(error, target)
            return TestOutcome(False, failure.stage, failure.message)
        return TestOutcome(True, "ok", f"connected to Redis {version} at {target}/{config.db}")


class NatsConfig(ConnectionConfig):
    host: str = Field(min_length=1)
    port: int = Field(default=4222, ge=1, le=65535)
    user: str = Field(default="", description="User name; blank for none (or a token).")
    tls: bool = Field(default=False, title="Use TLS", description="Connect with TLS.")
    timeout_seconds: int = Field(default=10, ge=1, le=120)


class NatsConnection(ConnectionType):
    key = "nats"
    title = "NATS JetStream"
    description = (
        "A NATS server with JetStream whose subjects flows publish to and are triggered from."
    )
    Config = NatsConfig
    secret_fields = (
        SecretField("password", "Password", help="With a user name."),
        SecretField("token", "Token", help="Instead of a user name and password."),
    )

    @classmethod
    def test(cls, config: NatsConfig, secrets: Mapping[str, str]) -> TestOutcome:
        from .nats import NatsSession

        target = f"{config.host}:{config.port}"
        try:
            with NatsSession(config, secrets) as session:
                version = session.server_version()
        except client.StreamError as error:
            return TestOutcome(False, error.stage, error.message)
        return TestOutcome(True, "ok", f"connected to NATS {version} with JetStream at {target}")
