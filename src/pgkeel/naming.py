"""One naming convention for every object, names that fit PostgreSQL's 63-byte limit.

PostgreSQL keeps the first 63 *bytes* of an identifier and silently drops the rest, while
SQLAlchemy shortens convention names by *characters* and only when it renders DDL. pgkeel fits
each generated name into 63 UTF-8 bytes when the constraint is attached to its table (a readable
prefix, then a short hash of the full name), so the name in ``Base.metadata``, in the migration
and in ``pg_catalog`` is the same string in every process. Names the developer writes (tables,
columns, explicit constraint names) are never shortened: they are refused with ``NamingError``.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
import types
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
)
from sqlalchemy.sql.elements import conv

from pgkeel.errors import NamingError
from pgkeel.rules import check_rule_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import TypeVar

    import inflect
    from sqlalchemy.sql.schema import Constraint, SchemaItem

    _ItemT = TypeVar("_ItemT", bound=SchemaItem)  # for type checkers only: no work at import

MAX_IDENTIFIER_BYTES = 63
HASH_LENGTH = 8
ALLOW_KEY = "pgkeel_allow"

_CAMEL_BOUNDARY = r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"
"""Where ``snake_case`` puts an underscore; ``re`` compiles it on first use, not at import (an
``alembic check`` of models already defined never needs it)."""


def allow(*rule_ids: str) -> dict[str, Any]:
    """An ``info`` dict that opts one object out of the named pgkeel rules (ids are checked)."""
    for rule_id in rule_ids:
        check_rule_id(rule_id, "pgkeel.naming.allow()")
    return {ALLOW_KEY: frozenset(rule_ids)}


def check_opt_outs(item: SchemaItem, where: str) -> None:
    """Refuse an unknown rule id in ``item``'s ``pgkeel_allow`` (an ``info`` written by hand)."""
    info = item.__dict__.get("info")  # ``info`` is created on first access: never create it
    listed = info.get(ALLOW_KEY, ()) if isinstance(info, dict) else ()
    for rule_id in [listed] if isinstance(listed, str) else listed:
        check_rule_id(rule_id, f"pgkeel_allow of {where}")


def _listing_opt_outs(items: Iterable[_ItemT]) -> list[_ItemT]:
    """The items among ``items`` whose ``info`` lists ``pgkeel_allow``: nearly always none.

    The test is written inside the comprehension, not in a function of its own: it runs on
    every column, constraint and index at each autogenerate, where a call per item costs more
    than the test itself.
    """
    return [
        item
        for item in items
        if (info := item.__dict__.get("info")) is not None
        and isinstance(info, dict)
        and ALLOW_KEY in info
    ]


def check_table_opt_outs(table: Table) -> None:
    """``check_opt_outs`` on ``table`` and each of its columns, constraints and indexes.

    Runs on every table at each autogenerate: an item without ``pgkeel_allow`` (nearly all) is
    passed over before its description is written.
    """
    if _listing_opt_outs((table,)):
        check_opt_outs(table, f"table {table.name}")
    for column in _listing_opt_outs(table.c):
        check_opt_outs(column, f"column {table.name}.{column.name}")
    items: list[Constraint | Index] = [*table.constraints, *table.indexes]
    for item in _listing_opt_outs(items):
        check_opt_outs(item, f"{describe(item)} of table {table.name}")
    for fk in _listing_opt_outs(table.foreign_keys):
        check_opt_outs(fk, f"foreign key {table.name}.{fk.parent.name}")


def allows(item: SchemaItem, rule_id: str) -> bool:
    """Whether ``item`` (Table, Column, Index, Constraint, ForeignKey) opts out of ``rule_id``."""
    return rule_id in item.info.get(ALLOW_KEY, ())


def byte_length(name: str) -> int:
    """Length of ``name`` as PostgreSQL counts it: UTF-8 bytes."""
    return len(name.encode())


def postgres_truncation(name: str) -> str:
    """What PostgreSQL makes of ``name``: its first 63 bytes, never half a character."""
    return name.encode()[:MAX_IDENTIFIER_BYTES].decode(errors="ignore")


def fit_identifier(name: str, limit: int = MAX_IDENTIFIER_BYTES) -> str:
    """``name`` itself if it fits ``limit`` bytes, else a readable prefix and a stable hash."""
    raw = name.encode()
    if len(raw) <= limit:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:HASH_LENGTH]
    prefix = raw[: limit - HASH_LENGTH - 1].decode(errors="ignore").rstrip("_")
    return f"{prefix}_{digest}"


def check_identifier(name: str, where: str, fix: str) -> None:
    """Raise ``NamingError`` when a name written by the developer is over 63 bytes."""
    length = byte_length(name)
    if length > MAX_IDENTIFIER_BYTES:
        raise NamingError(
            f"{where} {name!r} is {length} bytes long (UTF-8); PostgreSQL's limit is "
            f"{MAX_IDENTIFIER_BYTES} bytes and it would silently cut the name to "
            f"{postgres_truncation(name)!r}. Fix: {fix}"
        )


def is_snake_case(name: str) -> bool:
    """Lower-case ASCII letters, digits and underscores, not starting with a digit.

    String methods, not a regular expression: nothing to compile when pgkeel is imported, and a
    quicker test of the hundreds of column names each autogenerate reads. Like the pattern
    ``^[a-z_][a-z0-9_]*$`` it replaces (whose ``$`` also matches before a final newline), it
    reads a name that ends with one newline as the name without it.
    """
    name = name.removesuffix("\n")
    return name.isascii() and name.isidentifier() and name == name.lower()


def snake_case(class_name: str) -> str:
    """``WorkflowStep`` -> ``workflow_step``, ``HTTPRequest`` -> ``http_request``."""
    return re.sub(_CAMEL_BOUNDARY, "_", class_name).lower()


# Mass nouns common in schemas that inflect would pluralize (``softwares``) or misread (``medias``).
_UNCHANGED_PLURALS = frozenset(
    {
        "advice",
        "equipment",
        "feedback",
        "firmware",
        "hardware",
        "information",
        "knowledge",
        "media",
        "metadata",
        "middleware",
        "personnel",
        "research",
        "software",
        "staff",
        "traffic",
    }
)


def _unchecked(target: object = None, **_options: object) -> object:
    """A stand-in for ``typeguard.typechecked`` that returns what it decorates, unchanged."""
    return target if target is not None else _unchecked


def _import_inflect() -> types.ModuleType:
    """The module of inflect, imported without typeguard's run-time checks of its methods.

    inflect decorates its methods with ``typeguard.typechecked``, which re-parses and recompiles
    each one when the module is imported: about 1.5 s of CPU (4 s on a busy machine), paid by
    every process that defines a model. pgkeel only ever passes ``str``, so it imports inflect
    with a stand-in decorator (about 50 ms), then takes that module out of ``sys.modules``: the
    plurals come from inflect's own code, and other code that imports inflect later still gets
    the usual, checked module. If inflect already was imported, that module is used as it is.
    """
    if "inflect" in sys.modules:
        return sys.modules["inflect"]
    saved = sys.modules.get("typeguard")
    stand_in = types.ModuleType("typeguard")
    stand_in.typechecked = _unchecked  # type: ignore[attr-defined]
    sys.modules["typeguard"] = stand_in
    try:
        module: types.ModuleType | None = importlib.import_module("inflect")
    except ImportError:  # inflect came to need more of typeguard than the decorator
        module = None
    finally:
        _restore("typeguard", saved)
        sys.modules.pop("inflect", None)
    return module or importlib.import_module("inflect")


def _restore(name: str, module: types.ModuleType | None) -> None:
    if module is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = module


@cache
def _inflector() -> inflect.engine:
    engine: inflect.engine = _import_inflect().engine()
    return engine


@cache
def pluralize(word: str) -> str:
    """The English plural of a singular noun; a noun that is already plural is kept.

    Remembered per word: inflect takes tens of microseconds a word, and the same nouns come
    back for every model and every autogenerate run (the table-name rule asks for each table).
    """
    if not word or word in _UNCHANGED_PLURALS:
        return word
    engine = _inflector()
    plural = engine.plural_noun(word)
    singular = engine.singular_noun(word)
    if singular and plural == f"{word}s" and engine.plural_noun(singular) == word:
        return word
    return plural


def table_name_for(class_name: str) -> str:
    """The table name of a model class: plural snake case (``Category`` -> ``categories``)."""
    *head, last = snake_case(class_name).split("_")
    return "_".join([*head, pluralize(last)])


def _column_names(constraint: Constraint | Index) -> list[str]:
    if isinstance(constraint, ForeignKeyConstraint):
        return [element.parent.name for element in constraint.elements]
    columns = getattr(constraint, "columns", ())
    return [column.name for column in columns]


def _fitted(prefix: str, *, with_columns: bool) -> Callable[[Constraint | Index, Table], str]:
    def token(constraint: Constraint | Index, table: Table) -> str:
        parts = [prefix, table.name]
        if with_columns:
            parts.extend(_column_names(constraint))
        return fit_identifier("_".join(parts))

    return token


def _index_token(index: Constraint | Index, table: Table) -> str:
    """``idx_<table>_<columns>``, or ``uq_<table>_<columns>`` for a unique index."""
    return index_name(table.name, _column_names(index), unique=getattr(index, "unique", False))


def _check_token(constraint: Constraint | Index, table: Table) -> str:
    """``chk_<table>_<name>``; the developer's ``name`` must exist and fit 63 bytes itself."""
    name = constraint.name
    if not isinstance(name, str):
        raise NamingError(
            f"A CHECK constraint on table {table.name!r} has no name; the convention "
            "chk_<table>_<name> needs one. Fix: CheckConstraint(..., name='email_format'); for "
            "Boolean/Enum(create_constraint=True) pass name= to the type."
        )
    if isinstance(name, conv):
        return str(name)
    check_identifier(
        name,
        f"CHECK constraint name in table {table.name!r}:",
        "use a shorter name; pgkeel prefixes it with chk_<table>_ and fits the whole to 63 bytes.",
    )
    return fit_identifier(f"chk_{table.name}_{name}")


# Each key is a token computed by pgkeel, so the whole name is fitted to 63 bytes. The ``ck``
# template also names ``constraint_name`` with zero width: SQLAlchemy applies a convention to an
# explicitly named constraint only when the template mentions that token.
NAMING_CONVENTION: dict[str, Any] = {
    "pk": "%(pgkeel_pk)s",
    "fk": "%(pgkeel_fk)s",
    "uq": "%(pgkeel_uq)s",
    "ck": "%(pgkeel_ck)s%(constraint_name).0s",
    "ix": "%(pgkeel_ix)s",
    "pgkeel_pk": _fitted("pk", with_columns=False),
    "pgkeel_fk": _fitted("fk", with_columns=True),
    "pgkeel_uq": _fitted("uq", with_columns=True),
    "pgkeel_ck": _check_token,
    "pgkeel_ix": _index_token,
}


def index_name(table: str, columns: list[str], *, unique: bool = False) -> str:
    """The conventional name of an index on ``columns`` (``uq_`` when it enforces uniqueness)."""
    return fit_identifier("_".join(["uq" if unique else "idx", table, *columns]))


def written_name(item: Constraint | Index) -> str | None:
    """The name the developer gave ``item``; ``None`` for none or a convention name."""
    return item.name if isinstance(item.name, str) and not isinstance(item.name, conv) else None


def written_names(table: Table) -> Iterator[tuple[str, str, str]]:
    """Every name in ``table`` that the developer wrote: (name, where it is, how to shorten it)."""
    if table.schema is not None:
        yield (table.schema, f"Schema of table {table.name!r}:", "use a shorter schema name.")
    yield (table.name, "Table name", "set a shorter __tablename__ (or class name).")
    for column in table.columns:
        yield (
            column.name,
            f"Column name in table {table.name!r}:",
            "pass a shorter name: mapped_column('short_name', ...).",
        )
        type_name = getattr(column.type, "name", None)
        if isinstance(type_name, str):
            yield (
                type_name,
                f"Type name of column {table.name}.{column.name}:",
                "pass a shorter name= to the type (for example Enum(..., name='order_status')).",
            )
    items: list[Constraint | Index] = [*table.constraints, *table.indexes]
    for item in items:
        if (name := written_name(item)) is not None:
            yield (
                name,
                f"{type(item).__name__} name in table {table.name!r}:",
                "use a shorter explicit name, or none to get a fitted conventional one.",
            )


def check_table_names(table: Table) -> None:
    """Refuse a table whose written names do not fit 63 bytes (at class definition)."""
    for name, where, fix in written_names(table):
        check_identifier(name, where, fix)


def describe(item: Constraint | Index) -> str:
    """A short human description of a constraint or index: its kind and columns."""
    kinds = (
        (PrimaryKeyConstraint, "primary key"),
        (ForeignKeyConstraint, "foreign key"),
        (UniqueConstraint, "unique constraint"),
        (CheckConstraint, "CHECK constraint"),
    )
    default = "unique index" if getattr(item, "unique", False) else "index"
    kind = next((label for klass, label in kinds if isinstance(item, klass)), default)
    columns = ", ".join(_column_names(item))
    return f"{kind} on ({columns})" if columns else kind


def _named_items(table: Table) -> Iterator[tuple[str, Constraint | Index]]:
    items: list[Constraint | Index] = [*table.constraints, *table.indexes]
    for item in items:
        if isinstance(item.name, str):
            yield str(item.name), item


def relation_names(table: Table) -> dict[str, str]:
    """Names ``table`` takes in its schema's relation namespace: itself, its indexes and keys."""
    names = {table.name: f"table {table.name!r}"}
    for name, item in _named_items(table):
        if isinstance(item, Index | PrimaryKeyConstraint | UniqueConstraint):
            names[name] = f"{describe(item)} of table {table.name!r}"
    return names


_COLLISION_FIX = (
    "Fix: give one of them an explicit name (for example Index('idx_orders_by_day', ...)), "
    "or rename a table or column so the generated names differ."
)


def check_name_collisions(table: Table) -> None:
    """Refuse two objects of ``table`` (or one of it and one of a sibling table) with one name."""
    seen: dict[str, Constraint | Index] = {}
    for name, item in _named_items(table):
        other = seen.setdefault(name, item)
        if other is not item:
            raise NamingError(
                f"Table {table.name!r}: its {describe(other)} and its {describe(item)} both get "
                f"the name {name!r}; PostgreSQL would refuse the second. {_COLLISION_FIX}"
            )
    taken: dict[str, str] = {}
    for sibling in table.metadata.tables.values():
        if sibling is not table and sibling.schema == table.schema:
            taken.update(relation_names(sibling))
    for name, what in relation_names(table).items():
        if name in taken:
            raise NamingError(
                f"The {what} and the {taken[name]} both get the name {name!r}: tables, indexes "
                f"and keys share one namespace per schema. {_COLLISION_FIX}"
            )


def column_allows(column: Column[Any], rule_id: str) -> bool:
    """Whether ``column`` (or its table) opts out of ``rule_id``."""
    return allows(column, rule_id) or allows(column.table, rule_id)
