"""Server defaults compared as PostgreSQL stores them, so a changed default is migrated.

Alembic compares server defaults only when asked (``compare_server_default``), and then as text
or by evaluating both sides in a ``SELECT``, which reports a difference for every default that
reads a setting or calls a volatile function (``tenant_id``'s, ``gen_random_uuid()``). pgkeel
compares the texts in one canonical spelling (``expressions``: a literal's case and spaces
kept), then, when those differ, in PostgreSQL's own form: a quoted literal on a boolean column
as PostgreSQL's boolean input reads it (``'0'`` is stored as ``false``), any other default set
on an empty temporary copy of the table in a savepoint rolled back at once, and read back as the
catalog stores it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from psycopg import sql
from sqlalchemy import Boolean, DefaultClause

from alembic_extensions.indexes import normalise_predicate
from alembic_extensions.probes import literal_sql, stored_form, temporary_copy

if TYPE_CHECKING:
    from sqlalchemy import Column, Connection
    from sqlalchemy.engine import Dialect

_PROBE_TABLE = "pgkeel_default_probe"
_QUOTED = re.compile(r"'([^'\\]*)'")
_SPACES = " \t\n\r\v\f"
_BOOLEANS = dict.fromkeys(("t", "true", "y", "yes", "on", "1"), "true") | dict.fromkeys(
    ("f", "false", "n", "no", "off", "0"), "false"
)
"""The spellings of PostgreSQL's boolean input (``boolin``) read here, and what each stores."""
_MODEL_DEFAULTS: WeakKeyDictionary[DefaultClause, tuple[type[Dialect], str]] = WeakKeyDictionary()


def server_default_form(connection: Connection, column: Column[Any], default: str) -> str | None:
    """``default`` as PostgreSQL stores it for ``column``; None if it cannot say."""
    alter = sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT ").format(
        sql.Identifier(_PROBE_TABLE), sql.Identifier(column.name)
    )
    statements = [
        temporary_copy(_PROBE_TABLE, column.table.schema, column.table.name),
        alter.as_string() + default,
    ]
    read = sql.SQL(
        "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d"
        " JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
        " WHERE d.adrelid = {}::regclass AND a.attname = {}"
    ).format(sql.Literal(_PROBE_TABLE), sql.Literal(column.name))
    return stored_form(connection, statements, read.as_string())


def boolean_form(column: Column[Any], default: str) -> str | None:
    """``default`` as PostgreSQL stores it for a boolean ``column``, when the text tells.

    A quoted literal given to a boolean column goes through PostgreSQL's boolean input, which
    reads ``'0'``, ``'1'``, ``'f'``, ``'yes'``, ``' on '``... (any case, spaces around) and
    stores ``false`` or ``true``. Any other text, or another type, gives None: the server is
    asked (``server_default_form``).
    """
    if not isinstance(column.type, Boolean):
        return None
    quoted = _QUOTED.fullmatch(default)
    if quoted is None:
        return None
    word = quoted.group(1).strip(_SPACES)
    return _BOOLEANS.get(word.lower()) if word.isascii() else None


def _rendered(default: Any, dialect: Dialect) -> str | None:  # noqa: ANN401  # a DefaultClause or None
    """The model's default as SQL: a string is a literal, a clause is compiled.

    Remembered per default and dialect class: autogenerate runs often in one process, and
    compiling every column's default again was most of the comparison's cost.
    """
    if not isinstance(default, DefaultClause):
        return None
    known = _MODEL_DEFAULTS.get(default)
    if known is not None and known[0] is type(dialect):
        return known[1]
    if isinstance(default.arg, str):
        rendered = sql.Literal(default.arg).as_string()
    else:
        rendered = literal_sql(default.arg, dialect)
    _MODEL_DEFAULTS[default] = (type(dialect), rendered)
    return rendered


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
    known = boolean_form(conn_col, model)
    if known is not None:
        return known != stored
    if connection is None or conn_col.table is None:
        return True
    return server_default_form(connection, conn_col, model) != stored
