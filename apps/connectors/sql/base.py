"""What the SQL blocks share across databases: the result and error types, and the small
driver interface each database implements (``postgres.py``, ``mysql.py``).

A driver connects with a connection's settings (saying which stage failed: dns, refused,
timeout, tls, auth, config) and runs one parameterised statement in one transaction,
read-only when asked, with a timeout, returning at most N rows. Values are always passed
to the database driver separately from the statement text; Flowgate never builds a
statement from data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder


class SqlConnectError(Exception):
    """Could not connect; ``stage`` says why (dns, refused, timeout, tls, auth, config)."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage, self.message = stage, message


class SqlStatementError(Exception):
    """The database refused the statement; carries its message, its SQLSTATE and, where the
    database has one (MySQL/MariaDB), its own error code."""

    def __init__(
        self,
        message: str,
        sqlstate: str | None,
        *,
        code: int | None = None,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.message, self.sqlstate, self.code, self.retryable = message, sqlstate, code, retryable

    def reference(self) -> str:
        """``SQLSTATE 23000, error 1048`` — what a person looks up in the database's docs."""
        parts = [f"SQLSTATE {self.sqlstate or 'unknown'}"]
        if self.code is not None:
            parts.append(f"error {self.code}")
        return ", ".join(parts)


@dataclass(frozen=True)
class StatementResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool


STAGE_TEXT = {
    "auth": "authentication failed",
    "dns": "DNS: cannot resolve the host",
    "refused": "connection refused",
    "timeout": "the server did not answer in time",
    "tls": "TLS failed",
    "config": "cannot connect",
}


def json_safe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Decimal, dates, UUIDs, bytes and the like become JSON the run can store.
    return json.loads(json.dumps(rows, cls=DjangoJSONEncoder, default=str))


class SqlDriver(Protocol):
    """One database's implementation of the SQL blocks (a module satisfies it)."""

    def server_version(self, config: Any, secrets: Mapping[str, str]) -> str:
        """Connect and return the server's version; raise SqlConnectError on failure."""
        ...

    def run_statement(
        self,
        config: Any,
        secrets: Mapping[str, str],
        *,
        statement: str,
        params: Mapping[str, Any],
        max_rows: int,
        timeout_seconds: float,
        read_only: bool,
    ) -> StatementResult:
        """Run ``statement`` in one transaction and commit it; at most ``max_rows`` rows
        (``truncated`` says when there were more). Raises SqlConnectError or
        SqlStatementError."""
        ...
