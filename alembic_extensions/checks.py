"""CHECK constraints, which Alembic does not compare.

A named ``CheckConstraint`` of the model that the table lacks is added (on a table with rows,
``NOT VALID`` then validated, see ``safety``); one whose expression changed is dropped and added
again in the same transaction, so the table is never without it. Expressions are compared in one
canonical spelling (``expressions``: literals, quoted names and grouping kept), then, when those
differ, in PostgreSQL's own form (the model's expression is added to an empty temporary copy of
the table in a savepoint rolled back at once). A check found only in the database is left alone:
it may be a step of a recipe written by hand (``CHECK (column IS NOT NULL) NOT VALID`` before
``SET NOT NULL``), and leaving a rule in place loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import ops
from psycopg import sql
from sqlalchemy import CheckConstraint

from alembic_extensions.indexes import normalise_predicate, text_casts_kept
from alembic_extensions.probes import literal_sql, stored_form, temporary_copy

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Dialect

_PROBE_TABLE = "pgkeel_check_probe"


def _column_checks(table: Table) -> list[CheckConstraint]:
    """Checks given to a column (``mapped_column(..., CheckConstraint(...))``).

    SQLAlchemy keeps them on the column, not in ``table.constraints``, and Alembic's
    ``create_table`` leaves them out: without pgkeel such a rule would never reach the database.
    """
    return [
        constraint
        for column in table.columns
        for constraint in column.constraints
        if isinstance(constraint, CheckConstraint)
    ]


def _named_checks(table: Table, *, of_columns: bool) -> dict[str, CheckConstraint]:
    """The table's named checks, and its columns' too if asked (a reflected table has none)."""
    found = [*table.constraints, *(_column_checks(table) if of_columns else ())]
    return {
        str(constraint.name): constraint
        for constraint in found
        if isinstance(constraint, CheckConstraint) and isinstance(constraint.name, str)
    }


def _create(table: Table, constraint: CheckConstraint) -> ops.CreateCheckConstraintOp:
    """The operation adding ``constraint`` to ``table`` (a column's check names no table)."""
    return ops.CreateCheckConstraintOp(
        constraint.name, table.name, constraint.sqltext, schema=table.schema
    )


def new_table_column_checks(table: Table) -> list[ops.CreateCheckConstraintOp]:
    """For a table being created: its columns' named checks, which ``create_table`` leaves out."""
    return [
        _create(table, constraint)
        for constraint in _column_checks(table)
        if isinstance(constraint.name, str)
    ]


def _expression(constraint: CheckConstraint, dialect: Dialect) -> str:
    return literal_sql(constraint.sqltext, dialect, include_table=False)


def server_check(connection: Connection, table: Table, expression: str) -> str | None:
    """``expression`` as PostgreSQL stores a check on ``table``; None if it cannot say."""
    add = sql.SQL("ALTER TABLE {} ADD CHECK ").format(sql.Identifier(_PROBE_TABLE)).as_string()
    statements = [
        temporary_copy(_PROBE_TABLE, table.schema, table.name),
        add + f"({expression})",
    ]
    read = (
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'pgkeel_check_probe'::regclass AND contype = 'c'"
    )
    return stored_form(connection, statements, read)


def _stored_definition(connection: Connection, table: Table, name: str) -> str | None:
    # Reads one row by name: only for a check whose text already differs (rare).
    query = (
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " WHERE c.conrelid = to_regclass(%(relation)s) AND c.conname = %(name)s"
    )
    relation = sql.Identifier(*(part for part in (table.schema, table.name) if part)).as_string()
    return connection.exec_driver_sql(query, {"relation": relation, "name": name}).scalar()


def check_changed(
    model: CheckConstraint,
    reflected: CheckConstraint,
    dialect: Dialect,
    connection: Connection | None,
) -> bool:
    """Whether the model's check expression differs from the database's."""
    expression = _expression(model, dialect)
    table = reflected.table  # a model's column check is bound to its column, not to a table
    kept_casts = text_casts_kept(table)
    stored_text = str(reflected.sqltext)
    model_spelling = normalise_predicate(expression, kept_casts, settled=True)
    if model_spelling == normalise_predicate(stored_text, kept_casts, settled=True):
        return False
    if connection is None or table is None:
        return True
    stored = _stored_definition(connection, table, str(reflected.name))
    return stored is None or server_check(connection, table, expression) != stored


def check_constraint_ops(
    model_table: Table, reflected_table: Table, dialect: Dialect, connection: Connection | None
) -> list[Any]:
    """The operations that give the table the model's named checks (new or changed).

    A model table without named checks (most tables) needs no look at the database's.
    """
    wanted = _named_checks(model_table, of_columns=True)
    if not wanted:
        return []
    reflected = _named_checks(reflected_table, of_columns=False)
    found: list[Any] = []
    for name, constraint in sorted(wanted.items()):
        old = reflected.get(name)
        if old is not None and not check_changed(constraint, old, dialect, connection):
            continue
        if old is not None:
            drop = ops.DropConstraintOp.from_constraint(old)
            drop._reverse = ops.CreateCheckConstraintOp.from_constraint(old)
            found.append(drop)
        found.append(_create(model_table, constraint))
    return found
