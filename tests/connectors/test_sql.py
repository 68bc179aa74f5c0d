"""connector.sql.query / connector.sql.execute against the real test Postgres."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.db import connection as django_connection

from apps.connectors.services import connection_create, connection_test
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.connectors.helpers import run_sql_block
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database():
    settings = django_connection.settings_dict
    return {
        "host": settings["HOST"] or "127.0.0.1",
        "port": int(settings["PORT"] or 5432),
        "database": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"] or "",
    }


@pytest.fixture
def ledger(database):
    """A real table of its own in the test database, dropped afterwards."""
    table = f"ledger_{uuid.uuid4().hex[:8]}"
    dsn = {**database, "dbname": database["database"]}
    del dsn["database"]
    with psycopg.connect(**dsn, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE {table} (id serial PRIMARY KEY, account text NOT NULL, "
            "amount numeric(12,2) NOT NULL, idempotency_key text UNIQUE)"
        )
        connection.execute(
            f"INSERT INTO {table} (account, amount) SELECT 'acct-' || n, n FROM generate_series(1, 5) n"
        )
        yield table, connection
        connection.execute(f"DROP TABLE {table}")


@pytest.fixture
def books(workspace, admin_user, database):
    config = dict(database)
    password = config.pop("password")
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name="books",
        type="postgres",
        config={**config, "sslmode": "disable"},
        secrets={"password": password} if password else {},
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
    table, _ = ledger
    _run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        {"account": "x' OR '1'='1"},
        statement=f"SELECT count(*) AS n FROM {table} WHERE account = %(account)s",
        params={"account": "trigger.body.account"},
    )
    assert step.output["rows"] == [{"n": 0}]


def test_an_oversized_result_is_truncated_with_a_warning(workspace, admin_user, ledger, books):
    table, _ = ledger
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        statement=f"SELECT id FROM {table} ORDER BY id",
        max_rows=2,
    )
    assert run.status == "succeeded"
    assert [row["id"] for row in step.output["rows"]] == [1, 2]
    assert step.output["truncated"] is True
    assert "truncated at the row limit" in step.meta["warning"]


def test_a_query_runs_read_only(workspace, admin_user, ledger, books):
    table, connection = ledger
    run, _step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        statement=f"SELECT nextval('{table}_id_seq')",
    )
    assert run.status == "failed"
    assert "SQLSTATE 25006" in run.error["message"]  # read_only_sql_transaction
    assert "read-only transaction" in run.error["message"]
    run, _ = run_sql_block(
        workspace, admin_user, "connector.sql.query", statement=f"DELETE FROM {table}"
    )
    assert run.status == "failed"  # only a query may run here
    assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 5


def test_execute_writes_with_the_idempotency_key(workspace, admin_user, ledger, books):
    table, connection = ledger
    statement = (
        f"INSERT INTO {table} (account, amount, idempotency_key) "
        "VALUES (%(account)s, %(amount)s, %(idempotency_key)s) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
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
    key, amount = connection.execute(
        f"SELECT idempotency_key, amount FROM {table} WHERE account = 'travel'"
    ).fetchone()
    assert len(key) == 32 and float(amount) == 42.5


def test_a_database_error_shows_its_message_and_sqlstate(workspace, admin_user, ledger, books):
    table, _ = ledger
    run, _step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        statement=f"INSERT INTO {table} (account) VALUES ('no amount')",
    )
    assert run.status == "failed"
    assert 'null value in column "amount"' in run.error["message"]
    assert "SQLSTATE 23502" in run.error["message"]


def test_a_second_statement_is_refused(workspace, admin_user, ledger, books):
    table, connection = ledger
    run, _ = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        statement=f"UPDATE {table} SET amount = 0 WHERE id = 1; DROP TABLE {table}",
    )
    assert run.status == "failed"
    assert "multiple commands" in run.error["message"]
    assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 5


def test_templates_in_statements_are_rejected_at_validation():
    from apps.connectors.sql.blocks import SqlConfig

    with pytest.raises(ValueError, match="not templates"):
        SqlConfig(connection="books", statement="SELECT * FROM t WHERE a = '{{ trigger.body.a }}'")


def test_a_dry_run_describes_the_write_without_doing_it(workspace, admin_user, ledger, books):
    table, connection = ledger
    flow = published_flow(
        workspace,
        admin_user,
        definition(
            [
                node("start", "trigger.manual"),
                node(
                    "sql",
                    "connector.sql.execute",
                    connection="books",
                    statement=f"DELETE FROM {table}",
                ),
            ],
            [("start", "sql")],
        ),
    )
    run = run_start(
        flow=flow,
        trigger="test",
        payload=envelope({}),
        enqueue=False,
        dry_run=True,
        draft_definition=flow.draft_definition,
    ).run
    advance(run.id)
    step = StepRun.objects.get(run=run, node_id="sql")
    assert step.output["dry_run"] is True and step.output["statement"] == f"DELETE FROM {table}"
    assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 5


def test_the_test_button_connects_and_names_a_wrong_database(
    books, workspace, admin_user, database
):
    outcome = connection_test(connection=books)
    assert outcome.ok, outcome.message
    assert "connected to PostgreSQL" in outcome.message
    database.pop("password")
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="wrong",
        type="postgres",
        config={**database, "database": "no_such_db_xyz", "sslmode": "disable"},
        secrets={},
    )
    outcome = connection_test(connection=wrong)
    assert not outcome.ok and 'database "no_such_db_xyz" does not exist' in outcome.message


def test_an_unknown_role_says_authentication_failed(workspace, admin_user, database):
    database.pop("password")
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="nobody",
        type="postgres",
        config={**database, "user": "no_such_role_xyz", "sslmode": "disable"},
        secrets={},
    )
    outcome = connection_test(connection=wrong)
    assert outcome.stage == "auth" and "authentication failed" in outcome.message
