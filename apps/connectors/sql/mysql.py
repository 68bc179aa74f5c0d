"""The MySQL/MariaDB driver of the SQL blocks (PyMySQL): connect with a connection's
settings, run one parameterised statement with a timeout, read at most N rows.

Values are passed to PyMySQL separately from the statement (``%(name)s`` placeholders,
the same as for PostgreSQL) and sent as escaped literals for the connection's character
set; the statement text itself is never built from data. The client never enables
multi-statements, so a second statement smuggled after a ``;`` is refused by the server.
A query runs in ``START TRANSACTION READ ONLY``; the timeout is the server's statement
time limit (``max_statement_time`` on MariaDB, ``max_execution_time`` on MySQL) with the
socket read timeout as a backstop.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import pymysql
import pymysql.cursors

from .base import STAGE_TEXT, SqlConnectError, SqlStatementError, StatementResult, json_safe

# Error codes worth retrying: lock wait timeout, deadlock, too many connections, server
# gone away / lost connection, server shutting down.
RETRYABLE_CODES = frozenset({1205, 1213, 1040, 2006, 2013, 1053})
AUTH_CODES = frozenset({1044, 1045, 1698, 1227})


def _tls_context(mode: str) -> ssl.SSLContext | None:
    if mode == "disable":
        return None
    if mode == "verify":
        return ssl.create_default_context()
    context = ssl.create_default_context()  # "require": encrypted, certificate not checked
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _connect_stage(code: int | None, text: str) -> str:
    lowered = text.lower()
    if code in AUTH_CODES:
        return "auth"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "dns"
    if "errno -2]" in lowered or "errno -3]" in lowered or "errno -5]" in lowered:
        return "dns"
    if "connection refused" in lowered:
        return "refused"
    if "timed out" in lowered or "timeout" in lowered:
        return "timeout"
    if "ssl" in lowered or "tls" in lowered or "certificate" in lowered:
        return "tls"
    return "config"


def connect(
    config: Any, secrets: Mapping[str, str], *, read_timeout: float | None = None
) -> pymysql.connections.Connection:
    context = _tls_context(config.tls)
    try:
        return pymysql.connect(
            host=config.host,
            port=config.port,
            database=config.database,
            user=config.user,
            password=secrets.get("password") or "",
            charset="utf8mb4",
            connect_timeout=config.connect_timeout,
            read_timeout=read_timeout,
            write_timeout=read_timeout,
            autocommit=True,  # the statement's transaction is opened explicitly below
            ssl=context,
            ssl_disabled=context is None,
            cursorclass=pymysql.cursors.DictCursor,
            program_name="flowgate-connector",
        )
    except pymysql.MySQLError as error:
        code = error.args[0] if error.args and isinstance(error.args[0], int) else None
        text = str(error.args[1]) if len(error.args) > 1 else str(error) or repr(error)
        stage = _connect_stage(code, text)
        raise SqlConnectError(
            stage, f"{STAGE_TEXT[stage]} ({config.host}:{config.port}/{config.database}): {text}"
        ) from None


def server_version(config: Any, secrets: Mapping[str, str]) -> str:
    connection = connect(config, secrets)
    try:
        return str(connection.get_server_info())
    finally:
        connection.close()


def _set_timeout(connection: Any, timeout_seconds: float) -> None:
    with connection.cursor() as cursor:
        if "mariadb" in connection.get_server_info().lower():
            cursor.execute("SET SESSION max_statement_time = %s", (float(timeout_seconds),))
        else:  # MySQL: milliseconds, applies to SELECT
            cursor.execute("SET SESSION max_execution_time = %s", (int(timeout_seconds * 1000),))


def _statement_error(error: pymysql.MySQLError) -> SqlStatementError:
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    message = str(error.args[1]) if len(error.args) > 1 else str(error) or repr(error)
    sqlstate = getattr(error, "sqlstate", None)
    if code in (2013, 2006) and "timed out" in message.lower():
        message = f"the statement did not finish in time: {message}"
    retryable = code in RETRYABLE_CODES or (bool(sqlstate) and str(sqlstate)[:2] in ("08", "40"))
    return SqlStatementError(message, sqlstate, code=code, retryable=retryable)


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
    # The socket gives up a little after the server's own limit would have fired.
    connection = connect(config, secrets, read_timeout=timeout_seconds + 5)
    try:
        _set_timeout(connection, timeout_seconds)
        with connection.cursor() as cursor:
            cursor.execute("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")
        # Unbuffered: only max_rows + 1 rows are read before the answer is known.
        cursor = connection.cursor(pymysql.cursors.SSDictCursor)
        cursor.execute(statement, dict(params))
        columns = [column[0] for column in cursor.description or []]
        rows = list(cursor.fetchmany(max_rows + 1)) if cursor.description else []
        truncated = len(rows) > max_rows
        row_count = len(rows) if cursor.description else cursor.rowcount
        if read_only:
            # Nothing to commit; dropping the connection ends the read without reading
            # the rest of an oversized result (the abandoned result must not try to read
            # it either when it is collected).
            pending = getattr(cursor, "_result", None)
            if pending is not None:
                pending.unbuffered_active = False
            connection.close()
        else:
            cursor.close()
            connection.commit()
    except pymysql.MySQLError as error:
        raise _statement_error(error) from None
    finally:
        if connection.open:
            connection.close()
    return StatementResult(
        columns=columns,
        rows=json_safe(rows[:max_rows]),
        row_count=min(row_count, max_rows) if read_only else row_count,
        truncated=truncated,
    )
