"""Column changes on a table that holds rows: new columns that rewrite it, ``SET NOT NULL``.

And a changed collation, which Alembic's type comparison misses when one side names none.

- ``ADD COLUMN`` with a constant default only writes the catalog (PostgreSQL 11+). With a
  volatile default (``gen_random_uuid()``, ``clock_timestamp()``), an identity or a stored
  generated column, PostgreSQL computes a value per row by rewriting the whole table under an
  ACCESS EXCLUSIVE lock. Which it is, is asked of PostgreSQL itself (``add_column_rewrites``):
  the column is added to an empty temporary copy of the table in a savepoint rolled back at
  once, and a new ``relfilenode`` means a rewrite.
- ``SET NOT NULL`` scans the whole table under an ACCESS EXCLUSIVE lock, unless a valid
  ``CHECK (column IS NOT NULL)`` already proves it (PostgreSQL 12+). ``proven_not_null`` reads
  those checks, for every table of the run in one query.
- ``COLLATE``: a column's collation is part of its type (``Text(collation="C")``). Alembic
  compares it only when the model and the database both name one; ``collation_changed`` also
  sees a collation added or removed, a type without one meaning its type's default (what the
  reflection reports as none). The change is a type change (``op.alter_column(...,
  type_=...)``): it keeps the table but rebuilds the column's indexes, so the type-change guard
  refuses it on a table with indexed rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import ops
from psycopg import sql
from sqlalchemy import String, TypeDecorator, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.naming import conv

from alembic_extensions.acknowledge import AcknowledgeOp, acknowledge_hint
from alembic_extensions.probes import rewrites, temporary_copy
from alembic_extensions.rules import Violation
from pgkeel import rules

if TYPE_CHECKING:
    from alembic.operations import MigrateOperation
    from sqlalchemy import Column, Connection
    from sqlalchemy.types import TypeEngine

    from alembic_extensions.loss import LossGuard

ADD_COLUMN_REWRITE = rules.ADD_COLUMN_REWRITE
SET_NOT_NULL = rules.SET_NOT_NULL
NOT_NULL_PROVEN = rules.NOT_NULL_PROVEN
_PROBE_TABLE = "pgkeel_column_probe"

_NOT_NULL_CHECKS = text(
    "SELECT n.nspname, c.relname, a.attname, con.conname"
    " FROM pg_constraint con"
    " JOIN pg_class c ON c.oid = con.conrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = con.conkey[1]"
    " WHERE con.contype = 'c' AND con.convalidated AND cardinality(con.conkey) = 1"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND pg_get_constraintdef(con.oid)"
    " = format('CHECK ((%s IS NOT NULL))', quote_ident(a.attname))"
)


def may_rewrite(column: Column[Any]) -> bool:
    """Whether adding ``column`` might rewrite the table: it has a value computed per row."""
    return (
        column.server_default is not None
        or column.computed is not None
        or column.identity is not None
    )


def add_column_rewrites(
    connection: Connection, schema: str | None, table: str, column: Column[Any]
) -> bool | None:
    """Whether ``ALTER TABLE table ADD COLUMN column`` rewrites the table; None if unknown.

    Unknown when PostgreSQL cannot add it to the copy (a type or column that this same
    migration creates first).
    """
    spec = str(CreateColumn(column).compile(dialect=connection.dialect))
    add = sql.SQL("ALTER TABLE {} ADD COLUMN ").format(sql.Identifier(_PROBE_TABLE)).as_string()
    copy = temporary_copy(_PROBE_TABLE, schema, table)
    try:
        return rewrites(connection, copy, add + spec.replace("%", "%%"), _PROBE_TABLE)
    except DBAPIError:
        return None


def table_has_rows(connection: Connection, schema: str | None, table: str) -> bool:
    """Whether ``table`` holds a row: ``SELECT EXISTS``, with row-level security off.

    Where a policy would hide rows from this role (PostgreSQL then refuses to turn it off), a
    table whose file is not empty counts as one with rows.
    """
    relation = sql.Identifier(*(part for part in (schema, table) if part))
    exists = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(relation).as_string()
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql("SET LOCAL row_security = off")
        return bool(connection.exec_driver_sql(exists.replace("%", "%%")).scalar())
    except DBAPIError:
        savepoint.rollback()
        size = text("SELECT pg_relation_size(to_regclass(:relation)) > 0")
        return bool(connection.execute(size, {"relation": relation.as_string()}).scalar())
    finally:
        if savepoint.is_active:
            savepoint.rollback()


def add_column_violation(where: str, column: Column[Any]) -> Violation:
    """The refusal of a new column PostgreSQL fills by rewriting the table, with the recipe."""
    if column.identity is not None:
        what = "an identity column"
    elif column.computed is not None:
        what = "a stored generated column"
    else:
        what = f"a column with the volatile default {column.server_default.arg!s}"  # type: ignore[union-attr]
    return Violation(
        ADD_COLUMN_REWRITE,
        where,
        f"the migration adds {what}: PostgreSQL computes a value for every row by rewriting "
        "the whole table (and its indexes) under an ACCESS EXCLUSIVE lock that blocks every "
        "read and write until it ends.",
        "add it in steps: (1) a migration adds the column nullable with no default, or with a "
        "constant one (no rewrite), and the code starts writing it; (2) backfill the old rows "
        "in batches (op.backfill(table, {column: expression}, where='column IS NULL')); (3) a "
        "migration sets the default for new rows (op.alter_column(..., server_default=...): "
        "no rewrite) and makes it NOT NULL (nullable=False: pgkeel writes the check, "
        "validation and SET NOT NULL steps). A "
        "generated column becomes a plain column filled by a trigger, or an expression "
        "index; an identity becomes a default from a sequence set past the highest value.",
        acknowledge_hint(where) + ", for a table known to be small",
    )


def proven_not_null(connection: Connection) -> dict[tuple[str, str, str], str]:
    """``{(schema, table, column): check name}`` of each valid ``CHECK (column IS NOT NULL)``."""
    rows = connection.execute(_NOT_NULL_CHECKS)
    return {(row[0], row[1], row[2]): str(row[3]) for row in rows}


def set_not_null_violation(where: str, table: str, column: str) -> Violation:
    """The refusal of ``SET NOT NULL`` on a column with no valid check, with the recipe."""
    check = f"chk_{table}_{column}_not_null"
    return Violation(
        SET_NOT_NULL,
        where,
        f"the migration makes {where} NOT NULL: PostgreSQL scans the whole table to prove it "
        "under an ACCESS EXCLUSIVE lock that blocks every read and write until it ends (and "
        "fails if a row holds NULL).",
        "prove it first, in steps: (1) backfill the NULLs in batches (op.backfill); (2) a "
        f"migration written by hand adds op.create_check_constraint(op.f('{check}'), '{table}', "
        f"'{column} IS NOT NULL', postgresql_not_valid=True) (a brief lock, no scan); (3) the "
        f"next one runs op.validate_constraint('{check}', '{table}') (a scan that does not "
        "block writes); (4) then autogenerate with nullable=False: pgkeel sees the valid check, "
        "writes SET NOT NULL (no scan) and drops the check after it.",
        acknowledge_hint(where) + ", for a table known to be small",
    )


def _string_type(type_: TypeEngine[Any]) -> String | None:
    """The string type under ``type_`` (a ``TypeDecorator``'s implementation), if any."""
    found = type_.impl if isinstance(type_, TypeDecorator) else type_
    return found if isinstance(found, String) else None


def collation_changed(conn_col: Column[Any], metadata_col: Column[Any]) -> bool:
    """Whether the model gives the column another collation than the database has.

    Only string types are compared (``text``, ``varchar``, ``char``, enums), not arrays or
    domains (whose collation is the domain's); a collation's schema is compared only when both
    name one (the reflection names it only when it is not on the search path).
    """
    old, new = _string_type(conn_col.type), _string_type(metadata_col.type)
    if old is None or new is None:
        return False
    if old.collation != new.collation:
        return True
    schemas = [getattr(type_, "collation_schema", None) for type_ in (old, new)]
    return None not in schemas and schemas[0] != schemas[1]


def _where(schema: str | None, *names: str) -> str:
    return ".".join([*([schema] if schema else []), *names])


def guard_add_column(
    op: ops.AddColumnOp, container: ops.ModifyTableOps, guard: LossGuard
) -> list[MigrateOperation]:
    """The new column, refused (or acknowledged) when adding it rewrites the table."""
    column = op.column
    connection = guard.connection
    if connection is None or not may_rewrite(column):
        return [op]
    if not add_column_rewrites(connection, container.schema, container.table_name, column):
        return [op]
    where = _where(container.schema, container.table_name, column.name)
    if not guard.refuse_unless_acknowledged(add_column_violation(where, column)):
        return [op]
    return [AcknowledgeOp(ADD_COLUMN_REWRITE, where, "rewrites the table: acknowledged"), op]


def _proven(guard: LossGuard) -> dict[tuple[str, str, str], str]:
    """The valid NOT NULL checks of the database, read once per autogenerate run."""
    if "not_null_checks" not in guard.cache:
        assert guard.connection is not None  # noqa: S101  # the caller checked
        guard.cache["not_null_checks"] = proven_not_null(guard.connection)
    found: dict[tuple[str, str, str], str] = guard.cache["not_null_checks"]
    return found


def _drop_check(name: str, container: ops.ModifyTableOps, column: str) -> ops.DropConstraintOp:
    """The drop of a NOT NULL check, whose reverse adds it back."""
    named = conv(name)  # the name as the database has it, no naming convention applied
    add = ops.CreateCheckConstraintOp(
        named, container.table_name, f"{column} IS NOT NULL", schema=container.schema
    )
    return ops.DropConstraintOp(
        named, container.table_name, type_="check", schema=container.schema, _reverse=add
    )


def guard_not_null(
    op: ops.AlterColumnOp, container: ops.ModifyTableOps, guard: LossGuard
) -> list[MigrateOperation]:
    """``SET NOT NULL``: without a scan where a valid check proves it, else refused."""
    connection = guard.connection
    if connection is None:
        return [op]
    schema = container.schema or str(connection.dialect.default_schema_name)
    where = _where(container.schema, container.table_name, op.column_name)
    check = _proven(guard).get((schema, container.table_name, op.column_name))
    if check is not None:
        note = f"the valid check {check} proves it: no scan (checked by pgkeel)"
        steps: list[MigrateOperation] = [AcknowledgeOp(NOT_NULL_PROVEN, where, note), op]
        if check not in guard.model_checks:
            redundant = f"{check} is redundant once the column is NOT NULL"
            steps += [
                AcknowledgeOp(NOT_NULL_PROVEN, where, redundant),
                _drop_check(check, container, op.column_name),
            ]
        return steps
    violation = set_not_null_violation(where, container.table_name, op.column_name)
    if not guard.refuse_unless_acknowledged(violation):
        return [op]
    reason = "scans the table under an ACCESS EXCLUSIVE lock: acknowledged"
    return [AcknowledgeOp(SET_NOT_NULL, where, reason), op]
