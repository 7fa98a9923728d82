"""Server defaults compared as PostgreSQL stores them, so a changed default is migrated.

Alembic compares server defaults only when asked (``compare_server_default``), and then as text
or by evaluating both sides in a ``SELECT``, which reports a difference for every default that
reads a setting or calls a volatile function (``tenant_id``'s, ``gen_random_uuid()``). pgkeel
compares the texts in one canonical spelling (``expressions``: a literal's case and spaces
kept), then, when those differ, in PostgreSQL's own form: a quoted literal on a boolean or
integer column as PostgreSQL's input reads it (``'0'`` is stored as ``false`` on a boolean,
``0`` on an integer, ``'0'::bigint`` on a bigint), any other default set on an empty temporary
copy of the table in a savepoint rolled back at once, and read back as the catalog stores it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from psycopg import sql
from sqlalchemy import BigInteger, Boolean, DefaultClause, Integer, SmallInteger

from alembic_extensions.expressions import literal_of_cast
from alembic_extensions.indexes import normalise_predicate
from alembic_extensions.probes import literal_sql, stored_form, temporary_copy

if TYPE_CHECKING:
    from sqlalchemy import Column, Connection
    from sqlalchemy.engine import Dialect

_PROBE_TABLE = "pgkeel_default_probe"
_SPACES = " \t\n\r\v\f"
_BOOLEANS = dict.fromkeys(("t", "true", "y", "yes", "on", "1"), "true") | dict.fromkeys(
    ("f", "false", "n", "no", "off", "0"), "false"
)
"""The spellings of PostgreSQL's boolean input (``boolin``) read here, and what each stores."""
_INTEGERS = (  # (type, its name in a stored constant, its largest value), narrowest first
    (SmallInteger, "smallint", 2**15 - 1),
    (BigInteger, "bigint", 2**63 - 1),
    (Integer, "integer", 2**31 - 1),
)
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


def _quoted(default: str) -> str | None:
    """What ``'...'`` quotes, with no quote or backslash inside; None for any other text.

    Read with string methods: a pattern would cost its compilation (a tenth of a millisecond)
    when the module is first imported, in every process that compares a default.
    """
    inside = default[1:-1]
    if len(default) < 2 or default[0] != "'" or default[-1] != "'":
        return None
    return None if "'" in inside or "\\" in inside else inside


def _is_decimal_integer(digits: str) -> bool:
    """Whether ``digits`` are what every supported PostgreSQL's integer input reads as a decimal.

    ``[+-]?[0-9]+`` (PostgreSQL 16 reads more, 15 not).
    """
    unsigned = digits[1:] if digits[:1] in ("+", "-") else digits
    return unsigned.isascii() and unsigned.isdigit()


def boolean_form(column: Column[Any], default: str) -> str | None:
    """``default`` as PostgreSQL stores it for a boolean ``column``, when the text tells.

    A quoted literal given to a boolean column goes through PostgreSQL's boolean input, which
    reads ``'0'``, ``'1'``, ``'f'``, ``'yes'``, ``' on '``... (any case, spaces around) and
    stores ``false`` or ``true``. Any other text, or another type, gives None: the server is
    asked (``server_default_form``).
    """
    if not isinstance(column.type, Boolean):
        return None
    quoted = _quoted(default)
    if quoted is None:
        return None
    word = quoted.strip(_SPACES)
    return _BOOLEANS.get(word.lower()) if word.isascii() else None


def integer_form(column: Column[Any], default: str) -> str | None:
    """``default`` as PostgreSQL stores it for an integer ``column``, when the text tells.

    A quoted decimal given to an integer column goes through the type's input (spaces around
    and a sign allowed, leading zeros dropped) and is stored as a constant: ``7`` for a
    non-negative ``integer``, ``'-7'::integer``, ``'7'::bigint``, ``'7'::smallint``. Any other
    text, a value out of the type's range, or another type gives None: the server is asked.
    """
    quoted = _quoted(default)
    if quoted is None:
        return None
    digits = quoted.strip(_SPACES)
    if not _is_decimal_integer(digits):
        return None
    value = int(digits)
    for type_, name, largest in _INTEGERS:
        if isinstance(column.type, type_):
            if not -largest - 1 <= value <= largest:
                return None
            return str(value) if name == "integer" and value >= 0 else f"'{value}'::{name}"
    return None


def literal_form(column: Column[Any], default: str) -> str | None:
    """``default`` as PostgreSQL stores it, for the literals read without asking the server."""
    if isinstance(column.type, Boolean):
        return boolean_form(column, default)
    return integer_form(column, default)


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


def _alembics(old: object, new: object, column: Column[Any]) -> bool:
    """Whether Alembic compares these defaults: identity, generated, serial primary key."""
    if not (_plain(old) and _plain(new)):
        return True
    if old is None and new is None:  # nearly every column: nothing to ask of the table
        return False
    return column.table is not None and column.table._autoincrement_column is column


def _same_text(stored: str, model: str) -> bool:
    """Whether the stored default and the model's read the same in the canonical spelling.

    Most defaults are settled without the lexer: the same text, or a literal the catalog
    writes with its type's cast (``'-1'::integer`` for ``'-1'``).
    """
    if stored == model or literal_of_cast(stored) == model:
        return True
    return normalise_predicate(stored) == normalise_predicate(model)


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
    if _alembics(old, new, metadata_col):
        return None
    stored = None if old is None else str(old.arg.text)  # type: ignore[attr-defined]
    model = _rendered(new, dialect)
    if stored is None or model is None:
        return stored != model
    if _same_text(stored, model):
        return False
    known = literal_form(conn_col, model)
    if known is not None:
        return known != stored
    if connection is None or conn_col.table is None:
        return True
    return server_default_form(connection, conn_col, model) != stored
