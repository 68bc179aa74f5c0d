"""The real databases the SQL connector tests run against, and how each says things.

A test takes the ``sql`` fixture (tests/connectors/test_sql.py) and runs once per database:
the test Postgres, and MariaDB/MySQL when one listens (127.0.0.1:3306, root with an empty
password, or FLOWGATE_TEST_MYSQL_*). What differs between them (DDL, upserts, error texts)
lives here, so each behaviour is written once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MYSQL = {
    "host": os.environ.get("FLOWGATE_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("FLOWGATE_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("FLOWGATE_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("FLOWGATE_TEST_MYSQL_PASSWORD", ""),
}


@dataclass(frozen=True)
class SqlDatabase:
    type: str  # the connection type
    config: dict[str, Any]  # connection settings, without the password
    password: str
    sql: Callable[[str], list[tuple]]  # runs SQL on a side connection (autocommit)
    create_ledger: str  # DDL with a {table} placeholder
    idempotent_insert: str  # writes once per idempotency key; {table} placeholder
    writing_query: str  # a statement that writes, in a form the query block accepts
    read_only_error: str
    missing_value_errors: tuple[str, ...]  # any one of them (MySQL's depends on its mode)
    second_statement_error: str
    sleep: str  # a statement that takes five seconds
    timeout_error: str

    def count(self, table: str) -> int:
        return self.sql(f"SELECT count(*) FROM {table}")[0][0]

    def connection_settings(self, **changes: Any) -> dict[str, Any]:
        return {**self.config, **changes}

    @property
    def secrets(self) -> dict[str, str]:
        return {"password": self.password} if self.password else {}


def mysql_listening() -> bool:
    try:
        with socket.create_connection((MYSQL["host"], MYSQL["port"]), timeout=2):
            return True
    except OSError:
        return False


def postgres_database(settings: dict[str, Any]) -> SqlDatabase:
    """The test database itself (Django's connection settings)."""
    import psycopg

    config = {
        "host": settings["HOST"] or "127.0.0.1",
        "port": int(settings["PORT"] or 5432),
        "database": settings["NAME"],
        "user": settings["USER"],
        "sslmode": "disable",
    }
    password = settings["PASSWORD"] or ""

    def sql(statement: str) -> list[tuple]:
        with psycopg.connect(
            host=config["host"],
            port=config["port"],
            dbname=config["database"],
            user=config["user"],
            password=password,
            autocommit=True,
        ) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []

    return SqlDatabase(
        type="postgres",
        config=config,
        password=password,
        sql=sql,
        create_ledger=(
            "CREATE TABLE {table} (id serial PRIMARY KEY, account text NOT NULL, "
            "amount numeric(12,2) NOT NULL, idempotency_key text UNIQUE)"
        ),
        idempotent_insert=(
            "INSERT INTO {table} (account, amount, idempotency_key) "
            "VALUES (%(account)s, %(amount)s, %(idempotency_key)s) "
            "ON CONFLICT (idempotency_key) DO NOTHING"
        ),
        # The query block wraps the statement (a DELETE would be a syntax error there); a
        # SELECT that advances a sequence writes all the same.
        writing_query="SELECT nextval('{table}_id_seq')",
        read_only_error="read-only transaction",
        missing_value_errors=('null value in column "amount"',),
        second_statement_error="multiple commands",
        sleep="SELECT pg_sleep(5) AS slept",
        timeout_error="canceling statement due to statement timeout",
    )


@contextmanager
def mysql_database() -> Iterator[SqlDatabase]:
    """A database of its own on the MariaDB/MySQL server, dropped afterwards."""
    import pymysql

    name = f"flowgate_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(**MYSQL, autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")

    def sql(statement: str) -> list[tuple]:
        connection = pymysql.connect(**MYSQL, database=name, autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            connection.close()

    try:
        yield SqlDatabase(
            type="mysql",
            config={
                "host": MYSQL["host"],
                "port": MYSQL["port"],
                "database": name,
                "user": MYSQL["user"],
                "tls": "disable",
            },
            password=MYSQL["password"],
            sql=sql,
            create_ledger=(
                "CREATE TABLE {table} (id int AUTO_INCREMENT PRIMARY KEY, "
                "account varchar(100) NOT NULL, amount decimal(12,2) NOT NULL, "
                "idempotency_key varchar(64) UNIQUE)"
            ),
            idempotent_insert=(
                "INSERT IGNORE INTO {table} (account, amount, idempotency_key) "
                "VALUES (%(account)s, %(amount)s, %(idempotency_key)s)"
            ),
            writing_query="DELETE FROM {table}",
            read_only_error="READ ONLY transaction",
            missing_value_errors=("cannot be null", "doesn't have a default value"),
            second_statement_error="error 1064",  # a syntax error: no multi-statements
            sleep="SELECT SLEEP(5) AS slept",
            timeout_error="max_statement_time exceeded",  # MariaDB's own limit
        )
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
