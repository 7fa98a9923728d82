"""Server defaults compared as PostgreSQL stores them, so a changed default is migrated.

Alembic compares server defaults only when asked (``compare_server_default``), and then as text
or by evaluating both sides in a ``SELECT``, which reports a difference for every default that
reads a setting or calls a volatile function (``tenant_id``'s, ``gen_random_uuid()``). pgkeel
compares the texts stripped of casts, quotes, parentheses and spaces, then, when those differ,
in PostgreSQL's own form: the model's default is set on an empty temporary copy of the table in
a savepoint rolled back at once, and read back as the catalog stores it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql
from sqlalchemy import DefaultClause

from alembic_extensions.indexes import normalise_predicate
from alembic_extensions.probes import stored_form, temporary_copy

if TYPE_CHECKING:
    from sqlalchemy import Column, Connection
    from sqlalchemy.engine import Dialect

_PROBE_TABLE = "pgkeel_default_probe"


def server_default_form(connection: Connection, column: Column[Any], default: str) -> str | None:
    """``default`` as PostgreSQL stores it for ``column``; None if it cannot say."""
    alter = sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT ").format(
        sql.Identifier(_PROBE_TABLE), sql.Identifier(column.name)
    )
    statements = [
        temporary_copy(_PROBE_TABLE, column.table.schema, column.table.name),
        alter.as_string() + default.replace("%", "%%"),
    ]
    read = (
        "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
        " JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
        " WHERE d.adrelid = 'pgkeel_default_probe'::regclass AND a.attname = %(column)s"
    )
    return stored_form(connection, statements, read, {"column": column.name})


def _rendered(default: Any, dialect: Dialect) -> str | None:  # noqa: ANN401  # a DefaultClause or None
    """The model's default as SQL: a string is a literal, a clause is compiled."""
    if not isinstance(default, DefaultClause):
        return None
    if isinstance(default.arg, str):
        return sql.Literal(default.arg).as_string()
    return str(default.arg.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _plain(default: object) -> bool:
    return default is None or isinstance(default, DefaultClause)


def default_changed(
    connection: Connection | None,
    dialect: Dialect,
    conn_col: Column[Any],
    metadata_col: Column[Any],
) -> bool | None:
    """Whether the column's plain server default changed; None when pgkeel leaves it to Alembic.

    Identity and generated columns, and a serial primary key, are Alembic's to compare.
    """
    old, new = conn_col.server_default, metadata_col.server_default
    serial = (
        metadata_col.table is not None and metadata_col.table._autoincrement_column is metadata_col
    )
    if not (_plain(old) and _plain(new)) or serial:
        return None
    stored = None if old is None else str(old.arg.text)  # type: ignore[attr-defined]
    model = _rendered(new, dialect)
    if stored is None or model is None:
        return stored != model
    if normalise_predicate(stored) == normalise_predicate(model):
        return False
    if connection is None or conn_col.table is None:
        return True
    return server_default_form(connection, conn_col, model) != stored
