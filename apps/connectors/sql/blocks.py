"""connector.sql.query and connector.sql.execute: one parameterised statement against a
PostgreSQL or MySQL/MariaDB connection (the database's driver comes from ``drivers.py``). Values are bound from CEL expressions (``%(name)s`` placeholders),
never interpolated; ``%(idempotency_key)s`` is always bound to the step's idempotency key,
so an insert can carry it in a unique column and a retry becomes a no-op."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from apps.blocks.base import Block, BlockConfig, BlockContext, BlockError, Result
from apps.blocks.expressions import Expression

from ..types import connection_reference
from . import drivers
from .base import SqlConnectError, SqlStatementError, StatementResult

CONNECTION_TYPES = drivers.CONNECTION_TYPES


class SqlConfig(BlockConfig):
    connection: str = Field(
        description="A PostgreSQL or MySQL/MariaDB connection.",
        json_schema_extra=connection_reference(*drivers.CONNECTION_TYPES),
    )
    statement: str = Field(
        min_length=1,
        max_length=20_000,
        description="One SQL statement with %(name)s placeholders; values come from params.",
    )
    params: dict[str, Expression] = Field(
        default_factory=dict, description="Placeholder name → CEL expression giving its value."
    )
    max_rows: int = Field(default=1000, ge=1, le=100_000, description="Rows returned at most.")
    timeout_seconds: float = Field(default=30, gt=0, le=600)

    @field_validator("statement")
    @classmethod
    def statement_is_not_a_template(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError(
                "statements are not templates: use %(name)s placeholders and params instead"
            )
        return value


class SqlQueryConfig(SqlConfig):
    read_only: bool = Field(
        default=True, description="Run in a read-only transaction (writes are refused)."
    )


def _run(ctx: BlockContext, config: SqlConfig, *, read_only: bool) -> StatementResult:
    connection = ctx.service("connections").get(config.connection, type=CONNECTION_TYPES)
    params = {**ctx.evaluate_tree(dict(config.params)), "idempotency_key": ctx.idempotency_key}
    try:
        return drivers.driver_for(connection.type).run_statement(
            connection.config,
            connection.secrets,
            statement=config.statement,
            params=params,
            max_rows=config.max_rows,
            timeout_seconds=config.timeout_seconds,
            read_only=read_only,
        )
    except SqlConnectError as error:
        raise BlockError(
            f"connection {config.connection!r}: {error.message}",
            retryable=error.stage not in ("auth", "config"),
        ) from None
    except SqlStatementError as error:
        raise BlockError(
            f"{error.message} ({error.reference()})",
            retryable=error.retryable,
            details={"sqlstate": error.sqlstate, "code": error.code},
        ) from None


def _output(result: StatementResult, max_rows: int) -> Result:
    meta: dict[str, Any] = {"row_count": result.row_count}
    if result.truncated:
        meta["warning"] = f"more than {max_rows} rows: the result was truncated at the row limit"
    return Result(
        output={
            "columns": result.columns,
            "rows": result.rows,
            "row_count": result.row_count,
            "truncated": result.truncated,
        },
        meta=meta,
    )


class SqlQueryBlock(Block):
    """Read rows from a PostgreSQL or MySQL/MariaDB database with a parameterised query."""

    key = "connector.sql.query"
    title = "SQL query"
    category = "connector"
    calls_out = True
    icon = "database"
    Config = SqlQueryConfig
    side_effect = False  # read-only by default; turn read_only off only for a reason
    max_attempts = 3

    def execute(self, ctx: BlockContext, config: SqlQueryConfig, input: Any) -> Result:
        return _output(_run(ctx, config, read_only=config.read_only), config.max_rows)


class SqlExecuteBlock(Block):
    """Change data in a PostgreSQL or MySQL/MariaDB database with a parameterised statement."""

    key = "connector.sql.execute"
    title = "SQL execute"
    category = "connector"
    calls_out = True
    icon = "database"
    Config = SqlConfig
    side_effect = True
    # A database cannot tell a retry from a new write unless the statement uses
    # %(idempotency_key)s in a unique column; a crash mid-call is flagged for a person.
    idempotent = False

    def execute(self, ctx: BlockContext, config: SqlConfig, input: Any) -> Result:
        if ctx.dry_run:
            params = ctx.evaluate_tree(dict(config.params))
            description = {
                "dry_run": True,
                "connection": config.connection,
                "statement": config.statement,
                "params": params,
            }
            return Result(output=description, meta={"dry_run": True})
        return _output(_run(ctx, config, read_only=False), config.max_rows)
