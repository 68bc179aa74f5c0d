"""apps.core.native_sql: statements written with ``%s`` go to Postgres with ``$n``
placeholders through a reused RawCursor, and callers see what Django's cursors give them."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.core import native_sql

pytestmark = pytest.mark.django_db(transaction=True)


def test_placeholders_are_numbered_and_a_doubled_percent_is_a_percent():
    query = native_sql.native("SELECT %s::int + %s::int, '100%%', %s::text")
    assert native_sql.execute(query, [1, 2, "a%s"]).fetchone() == (3, "100%", "a%s")


def test_a_statement_of_many_rows_round_trips_its_values_in_order():
    query = native_sql.many_rows(
        "SELECT sum(n), string_agg(t, ',' ORDER BY n) FROM (VALUES {rows}) AS v(n, t)",
        "(%s::int, %s::text)",
        40,  # 80 values: more than psycopg parses once and caches
    )
    params = [value for n in range(40) for value in (n, f"t{n}")]
    for _ in range(2):  # the same statement again, on its kept cursor
        total, texts = native_sql.execute(query, params).fetchone()
        assert total == sum(range(40)) and texts == ",".join(f"t{n}" for n in range(40))


def test_each_execute_is_counted_and_logged_as_django_s_cursors_are():
    query = native_sql.native("SELECT %s::int")
    with CaptureQueriesContext(connection) as captured:
        native_sql.execute(query, [7])
        native_sql.execute(query, [8])
    assert [entry["sql"] for entry in captured.captured_queries] == ["SELECT $1::int"] * 2


def test_database_errors_are_django_s_and_leave_the_statement_usable():
    connection.cursor().execute("CREATE TEMPORARY TABLE native_sql_test (id int PRIMARY KEY)")
    query = native_sql.native("INSERT INTO native_sql_test VALUES (%s) RETURNING id")
    assert native_sql.execute(query, [1]).fetchone() == (1,)
    with pytest.raises(IntegrityError), transaction.atomic():
        native_sql.execute(query, [1])
    assert native_sql.execute(query, [2]).fetchone() == (2,)
    connection.close()  # a new connection: a cursor of its own
    connection.cursor().execute("CREATE TEMPORARY TABLE native_sql_test (id int PRIMARY KEY)")
    assert native_sql.execute(query, [3]).fetchone() == (3,)
