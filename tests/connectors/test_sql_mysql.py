"""connector.sql.query / connector.sql.execute and the ``mysql`` connection type against a
real MariaDB/MySQL (127.0.0.1:3306, root with an empty password, or FLOWGATE_TEST_MYSQL_*).
Each test module run uses a database of its own, dropped at the end."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from apps.connectors.services import connection_create, connection_test
from tests.connectors.helpers import run_sql_block

MYSQL = {
    "host": os.environ.get("FLOWGATE_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("FLOWGATE_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("FLOWGATE_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("FLOWGATE_TEST_MYSQL_PASSWORD", ""),
}


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not _listening(MYSQL["host"], MYSQL["port"]),
        reason=f"no MySQL/MariaDB listens on {MYSQL['host']}:{MYSQL['port']}",
    ),
]


@pytest.fixture(scope="module")
def mysql_database():
    import pymysql

    name = f"flowgate_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(**MYSQL, autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def ledger(mysql_database):
    """A real table of its own, dropped afterwards; yields (table, a cursor to check it)."""
    import pymysql

    table = f"ledger_{uuid.uuid4().hex[:8]}"
    connection = pymysql.connect(**MYSQL, database=mysql_database, autocommit=True)
    cursor = connection.cursor()
    cursor.execute(
        f"CREATE TABLE {table} (id int AUTO_INCREMENT PRIMARY KEY, account varchar(100) NOT NULL, "
        "amount decimal(12,2) NOT NULL, idempotency_key varchar(64) UNIQUE)"
    )
    cursor.executemany(
        f"INSERT INTO {table} (account, amount) VALUES (%s, %s)",
        [(f"acct-{n}", n) for n in range(1, 6)],
    )
    yield table, cursor
    cursor.execute(f"DROP TABLE {table}")
    connection.close()


def count(cursor, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {table}")
    return cursor.fetchone()[0]


@pytest.fixture
def books(workspace, admin_user, mysql_database):
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name="books",
        type="mysql",
        config={
            "host": MYSQL["host"],
            "port": MYSQL["port"],
            "database": mysql_database,
            "user": MYSQL["user"],
            "tls": "disable",
        },
        secrets={"password": MYSQL["password"]} if MYSQL["password"] else {},
    )


def test_a_query_binds_values_and_returns_rows(workspace, admin_user, ledger, books):
    table, _ = ledger
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        {"min": 3},
        statement=f"SELECT account, amount FROM {table} WHERE amount >= %(min)s ORDER BY id",
        params={"min": "trigger.body.min"},
    )
    assert run.status == "succeeded", run.error
    assert step.output["columns"] == ["account", "amount"]
    assert step.output["rows"] == [
        {"account": "acct-3", "amount": "3.00"},
        {"account": "acct-4", "amount": "4.00"},
        {"account": "acct-5", "amount": "5.00"},
    ]
    assert step.output["truncated"] is False


def test_a_value_is_bound_not_interpolated(workspace, admin_user, ledger, books):
    table, cursor = ledger
    hostile = "x' OR '1'='1'; DELETE FROM " + table + "; -- \\"
    _run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        {"account": hostile},
        statement=f"SELECT count(*) AS n, %(account)s AS echoed FROM {table} WHERE account = %(account)s",
        params={"account": "trigger.body.account"},
    )
    assert step.output["rows"] == [{"n": 0, "echoed": hostile}]
    assert count(cursor, table) == 5


def test_an_oversized_result_is_truncated_with_a_warning(workspace, admin_user, ledger, books):
    table, _ = ledger
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        statement=f"SELECT id FROM {table} ORDER BY id",
        max_rows=2,
    )
    assert run.status == "succeeded", run.error
    assert [row["id"] for row in step.output["rows"]] == [1, 2]
    assert step.output["truncated"] is True
    assert "truncated at the row limit" in step.meta["warning"]


def test_a_query_runs_read_only(workspace, admin_user, ledger, books):
    table, cursor = ledger
    run, _ = run_sql_block(
        workspace, admin_user, "connector.sql.query", statement=f"DELETE FROM {table}"
    )
    assert run.status == "failed"
    assert "READ ONLY transaction" in run.error["message"]
    assert "SQLSTATE 25006, error 1792" in run.error["message"]
    assert count(cursor, table) == 5


def test_execute_writes_with_the_idempotency_key(workspace, admin_user, ledger, books):
    table, cursor = ledger
    statement = (
        f"INSERT IGNORE INTO {table} (account, amount, idempotency_key) "
        "VALUES (%(account)s, %(amount)s, %(idempotency_key)s)"
    )
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        {"account": "travel", "amount": 42.5},
        statement=statement,
        params={"account": "trigger.body.account", "amount": "trigger.body.amount"},
    )
    assert run.status == "succeeded", run.error
    assert step.output["row_count"] == 1
    cursor.execute(f"SELECT idempotency_key, amount FROM {table} WHERE account = 'travel'")
    key, amount = cursor.fetchone()
    assert len(key) == 32 and float(amount) == 42.5


def test_a_database_error_shows_its_message_and_code(workspace, admin_user, ledger, books):
    table, _ = ledger
    run, _ = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        statement=f"INSERT INTO {table} (amount) VALUES (NULL)",
    )
    assert run.status == "failed"
    assert "Column 'account' cannot be null" in run.error["message"] or (
        "doesn't have a default value" in run.error["message"]
    )
    assert "SQLSTATE 23000, error 1048" in run.error["message"] or (
        "SQLSTATE HY000, error 1364" in run.error["message"]
    )


def test_a_second_statement_is_refused(workspace, admin_user, ledger, books):
    table, cursor = ledger
    run, _ = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        statement=f"UPDATE {table} SET amount = 0 WHERE id = 1; DROP TABLE {table}",
    )
    assert run.status == "failed"
    assert "error 1064" in run.error["message"]  # syntax error: no multi-statements
    cursor.execute(f"SELECT amount FROM {table} WHERE id = 1")
    assert float(cursor.fetchone()[0]) == 1.0
    assert count(cursor, table) == 5


def test_a_slow_statement_stops_at_the_timeout(workspace, admin_user, ledger, books):
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        statement="SELECT SLEEP(5) AS slept",
        timeout_seconds=0.5,
    )
    assert run.status == "failed"
    assert "max_statement_time exceeded" in run.error["message"]  # MariaDB's own limit
    assert "SQLSTATE 70100, error 1969" in run.error["message"]
    assert (step.finished_at - step.started_at).total_seconds() < 4


def test_the_test_button_connects_and_names_a_wrong_database(
    books, workspace, admin_user, mysql_database
):
    outcome = connection_test(connection=books)
    assert outcome.ok, outcome.message
    assert outcome.message.startswith(("connected to MariaDB", "connected to MySQL"))
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="wrong",
        type="mysql",
        config={**books.config, "database": "no_such_db_xyz"},
        secrets={},
    )
    outcome = connection_test(connection=wrong)
    assert not outcome.ok and "no_such_db_xyz" in outcome.message


@pytest.mark.parametrize(
    ("change", "stage"),
    [
        ({"user": "no_such_user_xyz"}, "auth"),
        ({"host": "no-such-host.invalid"}, "dns"),
        ({"port": 1}, "refused"),
    ],
)
def test_the_test_button_names_the_failed_stage(books, workspace, admin_user, change, stage):
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name=f"wrong-{stage}",
        type="mysql",
        config={**books.config, **change},
        secrets={"password": "wrong-password"},
    )
    outcome = connection_test(connection=wrong)
    assert (outcome.ok, outcome.stage) == (False, stage), outcome.message
