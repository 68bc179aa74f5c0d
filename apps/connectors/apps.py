from typing import Any

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        # Each connector folder brings its connection type and blocks; adding one is one
        # more line here.
        from apps.blocks.registry import register_block, register_service

        from .email.block import EmailSendBlock
        from .email.connection import SmtpConnection
        from .email.trigger import EmailTrigger
        from .http.block import HttpBlock
        from .http.connection import HttpApiConnection
        from .llm.connection import LlmConnection
        from .models import EgressSettings
        from .selectors import EGRESS_ALLOWLISTS
        from .services import WorkspaceConnections
        from .sql.blocks import SqlExecuteBlock, SqlQueryBlock
        from .sql.connection import MysqlConnection, PostgresConnection
        from .streams.blocks import StreamPublishBlock, StreamTrigger
        from .streams.connection import NatsConnection, RedisConnection
        from .types import register_connection_type
        from .webhook.block import WebhookOutBlock
        from .webhook.connection import WebhookConnection

        # Cached allow-lists are dropped in every process once a change commits.
        EGRESS_ALLOWLISTS.follow(EgressSettings)
        register_service("connections", WorkspaceConnections)
        register_connection_type(HttpApiConnection)
        register_block(HttpBlock)
        register_connection_type(PostgresConnection)
        register_connection_type(MysqlConnection)
        register_block(SqlQueryBlock)
        register_block(SqlExecuteBlock)
        register_connection_type(SmtpConnection)
        register_block(EmailSendBlock)
        register_block(EmailTrigger)
        register_connection_type(RedisConnection)
        register_connection_type(NatsConnection)
        register_block(StreamPublishBlock)
        register_block(StreamTrigger)
        register_connection_type(WebhookConnection)
        register_block(WebhookOutBlock)
        register_connection_type(LlmConnection)

    def seed_demo(self, *, workspace: Any, users: dict[str, Any]) -> None:
        """A ``demo-events`` Redis Streams connection on the studio's own Redis, so demo
        flows can publish decisions and be triggered by stream messages (idempotent)."""
        from .demo import demo_connections_ensure

        demo_connections_ensure(workspace=workspace, actor=users.get("admin"))
