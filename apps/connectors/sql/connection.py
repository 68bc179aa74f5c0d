"""The ``postgres`` and ``mysql`` connection types (the SQL blocks work with both)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ..types import ConnectionConfig, ConnectionType, SecretField, TestOutcome
from . import drivers
from .base import SqlConnectError


class SqlConnectionType(ConnectionType):
    """A database the SQL blocks run on; the test button connects and names the server."""

    secret_fields = (SecretField("password", "Password"),)

    @classmethod
    def product(cls, version: str) -> str:
        return cls.title

    @classmethod
    def test(cls, config: Any, secrets: Mapping[str, str]) -> TestOutcome:
        try:
            version = drivers.driver_for(cls.key).server_version(config, secrets)
        except SqlConnectError as error:
            return TestOutcome(False, error.stage, error.message)
        product = cls.product(version)
        return TestOutcome(True, "ok", f"connected to {product} {version} as {config.user}")


class PostgresConfig(ConnectionConfig):
    host: str = Field(min_length=1, description="Host name or address of the server.")
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = Field(
        default="prefer", description="TLS: require or verify-full in production."
    )
    connect_timeout: int = Field(default=10, ge=1, le=120, description="Seconds.")


class PostgresConnection(SqlConnectionType):
    key = "postgres"
    title = "PostgreSQL"
    description = "A PostgreSQL database for the SQL query and execute blocks."
    Config = PostgresConfig


class MysqlConfig(ConnectionConfig):
    host: str = Field(min_length=1, description="Host name or address of the server.")
    port: int = Field(default=3306, ge=1, le=65535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    tls: Literal["disable", "require", "verify"] = Field(
        default="require",
        description="TLS: require encrypts; verify also checks the certificate and host name.",
    )
    connect_timeout: int = Field(default=10, ge=1, le=120, description="Seconds.")


class MysqlConnection(SqlConnectionType):
    key = "mysql"
    title = "MySQL / MariaDB"
    description = "A MySQL or MariaDB database for the SQL query and execute blocks."
    Config = MysqlConfig

    @classmethod
    def product(cls, version: str) -> str:
        return "MariaDB" if "mariadb" in version.lower() else "MySQL"
