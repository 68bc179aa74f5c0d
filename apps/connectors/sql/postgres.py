"""The PostgreSQL driver of the SQL blocks (psycopg 3): connect with a connection's
settings, run one parameterised statement with a timeout, read at most N rows.

Statements are never built from data: values travel as bound parameters, and the
statement is sent with the extended protocol (``prepare=True``), so a second statement
smuggled after a ``;`` is refused by the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .base import STAGE_TEXT, SqlConnectError, SqlStatementError, StatementResult, json_safe

# SQLSTATE classes worth retrying: connection exceptions, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention.
RETRYABLE_SQLSTATE_CLASSES = ("08", "40", "53", "57")
# 57014 is also the step's own statement_timeout: running the statement again would only hit
# the same limit (MariaDB's max_statement_time is not retried either).
QUERY_CANCELED = "57014"


def _connect_stage(text: str) -> str:
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return "auth"
    if "role" in lowered and "does not exist" in lowered:
        return "auth"
    if "translate host name" in lowered or "name or service not known" in lowered:
        return "dns"
    if "connection refused" in lowered:
        return "refused"
    if "timeout" in lowered:
        return "timeout"
    if "ssl" in lowered or "certificate" in lowered:
        return "tls"
    return "config"


def connect(
    config: Any, secrets: Mapping[str, str], *, statement_timeout_ms: int | None = None
) -> psycopg.Connection:
    options = f"-c statement_timeout={statement_timeout_ms}" if statement_timeout_ms else None
    try:
        return psycopg.connect(
            host=config.host,
            port=config.port,
            dbname=config.database,
            user=config.user,
            password=secrets.get("password") or None,
            sslmode=config.sslmode,
            connect_timeout=config.connect_timeout,
            application_name="flowgate-connector",
            options=options,
        )
    except psycopg.OperationalError as error:
        text = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        stage = _connect_stage(str(error))
        raise SqlConnectError(
            stage, f"{STAGE_TEXT[stage]} ({config.host}:{config.port}/{config.database}): {text}"
        ) from None


def run_statement(
    config: Any,
    secrets: Mapping[str, str],
    *,
    statement: str,
    params: Mapping[str, Any],
    max_rows: int,
    timeout_seconds: float,
    read_only: bool,
) -> StatementResult:
    """Run ``statement`` in one transaction (read-only when asked) and commit it; return at
    most ``max_rows`` rows (``truncated`` says when there were more)."""
    connection = connect(config, secrets, statement_timeout_ms=int(timeout_seconds * 1000))
    try:
        with connection:
            connection.autocommit = True  # transaction() below is the only transaction
            connection.read_only = read_only
            with connection.transaction():
                if read_only:
                    # A server-side cursor: only max_rows + 1 rows ever leave the server.
                    cursor: Any = connection.cursor(name="flowgate_query", row_factory=dict_row)
                    cursor.execute(statement, dict(params))
                else:
                    cursor = connection.cursor(row_factory=dict_row)
                    cursor.execute(statement, dict(params), prepare=True)
                with cursor:
                    columns = [column.name for column in cursor.description or []]
                    rows = cursor.fetchmany(max_rows + 1) if cursor.description else []
                    row_count = len(rows) if read_only else cursor.rowcount
    except psycopg.Error as error:
        diagnostic = getattr(error, "diag", None)
        message = (diagnostic.message_primary if diagnostic else None) or str(error)
        sqlstate = getattr(error, "sqlstate", None)
        retryable = (
            isinstance(sqlstate, str)
            and sqlstate[:2] in RETRYABLE_SQLSTATE_CLASSES
            and sqlstate != QUERY_CANCELED
        )
        raise SqlStatementError(message, sqlstate, retryable=retryable) from None
    return StatementResult(
        columns=columns,
        rows=json_safe(rows[:max_rows]),
        row_count=row_count,
        truncated=len(rows) > max_rows,
    )


def server_version(config: Any, secrets: Mapping[str, str]) -> str:
    with connect(config, secrets) as connection:
        return str(connection.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
