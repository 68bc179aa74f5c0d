"""connector.sql.query / connector.sql.execute and the SQL connection types, each test run
against every real database there is: the test Postgres, and MariaDB/MySQL when one listens
(tests/connectors/sql_databases.py says how each differs)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection as django_connection

from apps.connectors.services import connection_create, connection_test
from apps.runs.blocks import envelope
from apps.runs.engine import advance
from apps.runs.models import StepRun
from apps.runs.services import run_start
from tests.connectors.helpers import run_sql_block
from tests.connectors.sql_databases import mysql_database, mysql_listening, postgres_database
from tests.runs.helpers import definition, node, published_flow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def mysql():
    if not mysql_listening():
        pytest.fail(
            "no MySQL/MariaDB listens on the test address (FLOWGATE_TEST_MYSQL_*): "
            "scripts/test.sh starts one"
        )
    with mysql_database() as database:
        yield database


@pytest.fixture(params=["postgres", "mysql"])
def sql(request):
    if request.param == "mysql":
        return request.getfixturevalue("mysql")
    return postgres_database(django_connection.settings_dict)


@pytest.fixture
def ledger(sql):
    """A real table of its own holding accounts acct-1..acct-5, dropped afterwards."""
    table = f"ledger_{uuid.uuid4().hex[:8]}"
    sql.sql(sql.create_ledger.format(table=table))
    sql.sql(
        f"INSERT INTO {table} (account, amount) VALUES "
        + ", ".join(f"('acct-{n}', {n})" for n in range(1, 6))
    )
    yield table
    sql.sql(f"DROP TABLE {table}")


@pytest.fixture
def books(workspace, admin_user, sql):
    return connection_create(
        workspace=workspace,
        actor=admin_user,
        name="books",
        type=sql.type,
        config=sql.connection_settings(),
        secrets=sql.secrets,
    )


def test_a_query_binds_values_and_returns_rows(workspace, admin_user, ledger, books):
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        {"min": 3},
        statement=f"SELECT account, amount FROM {ledger} WHERE amount >= %(min)s ORDER BY id",
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


def test_a_value_is_bound_not_interpolated(workspace, admin_user, sql, ledger, books):
    hostile = f"x' OR '1'='1'; DELETE FROM {ledger}; -- \\"
    _run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        {"account": hostile},
        statement=f"SELECT count(*) AS n FROM {ledger} WHERE account = %(account)s",
        params={"account": "trigger.body.account"},
    )
    assert step.output["rows"] == [{"n": 0}]
    assert sql.count(ledger) == 5


def test_an_oversized_result_is_truncated_with_a_warning(workspace, admin_user, ledger, books):
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        statement=f"SELECT id FROM {ledger} ORDER BY id",
        max_rows=2,
    )
    assert run.status == "succeeded", run.error
    assert [row["id"] for row in step.output["rows"]] == [1, 2]
    assert step.output["truncated"] is True
    assert "truncated at the row limit" in step.meta["warning"]


def test_a_query_runs_read_only(workspace, admin_user, sql, ledger, books):
    run, _ = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        statement=sql.writing_query.format(table=ledger),
    )
    assert run.status == "failed"
    assert sql.read_only_error in run.error["message"]
    assert "SQLSTATE 25006" in run.error["message"]  # read_only_sql_transaction
    run, _ = run_sql_block(
        workspace, admin_user, "connector.sql.query", statement=f"DELETE FROM {ledger}"
    )
    assert run.status == "failed"  # only a query may run here
    assert sql.count(ledger) == 5


def test_execute_writes_once_per_idempotency_key(workspace, admin_user, sql, ledger, books):
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        {"account": "travel", "amount": 42.5},
        statement=sql.idempotent_insert.format(table=ledger),
        params={"account": "trigger.body.account", "amount": "trigger.body.amount"},
    )
    assert run.status == "succeeded", run.error
    assert step.output["row_count"] == 1
    [(key, amount)] = sql.sql(
        f"SELECT idempotency_key, amount FROM {ledger} WHERE account = 'travel'"
    )
    assert len(key) == 32 and float(amount) == 42.5


def test_a_database_error_shows_its_message_and_code(workspace, admin_user, sql, ledger, books):
    run, _ = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        statement=f"INSERT INTO {ledger} (account) VALUES ('no amount')",
    )
    assert run.status == "failed"
    message = run.error["message"]
    assert any(text in message for text in sql.missing_value_errors), message
    assert "SQLSTATE " in message


def test_a_second_statement_is_refused(workspace, admin_user, sql, ledger, books):
    run, _ = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.execute",
        statement=f"UPDATE {ledger} SET amount = 0 WHERE id = 1; DROP TABLE {ledger}",
    )
    assert run.status == "failed"
    assert sql.second_statement_error in run.error["message"]
    assert sql.sql(f"SELECT amount FROM {ledger} WHERE id = 1")[0][0] == 1
    assert sql.count(ledger) == 5


def test_a_slow_statement_stops_at_the_timeout(workspace, admin_user, sql, books):
    run, step = run_sql_block(
        workspace,
        admin_user,
        "connector.sql.query",
        statement=sql.sleep,
        timeout_seconds=0.5,
    )
    assert run.status == "failed"
    assert sql.timeout_error in run.error["message"]
    assert (step.finished_at - step.started_at).total_seconds() < 4


def test_templates_in_statements_are_rejected_at_validation():
    from apps.connectors.sql.blocks import SqlConfig

    with pytest.raises(ValueError, match="not templates"):
        SqlConfig(connection="books", statement="SELECT * FROM t WHERE a = '{{ trigger.body.a }}'")


def test_a_dry_run_describes_the_write_without_doing_it(workspace, admin_user, sql, ledger, books):
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
                    statement=f"DELETE FROM {ledger}",
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
    assert step.output["dry_run"] is True and step.output["statement"] == f"DELETE FROM {ledger}"
    assert sql.count(ledger) == 5


def test_the_test_button_connects_and_names_a_wrong_database(books, workspace, admin_user, sql):
    outcome = connection_test(connection=books)
    assert outcome.ok, outcome.message
    assert outcome.message.startswith(
        ("connected to PostgreSQL", "connected to MariaDB", "connected to MySQL")
    )
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name="wrong",
        type=sql.type,
        config=sql.connection_settings(database="no_such_db_xyz"),
        secrets=sql.secrets,
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
def test_the_test_button_names_the_failed_stage(workspace, admin_user, sql, change, stage):
    wrong = connection_create(
        workspace=workspace,
        actor=admin_user,
        name=f"wrong-{stage}",
        type=sql.type,
        config=sql.connection_settings(**change),
        secrets={"password": "wrong-password"},
    )
    outcome = connection_test(connection=wrong)
    assert (outcome.ok, outcome.stage) == (False, stage), outcome.message
