"""Partial-index predicates, which Alembic does not compare.

Alembic compares an index's columns but not its ``WHERE`` predicate; ``predicate_changed``
compares both sides' predicates, first in one canonical spelling (``expressions``: the contents
of string literals, quoted names and the grouping kept; the casts PostgreSQL adds,
spaces, keyword case and redundant parentheses left out), then, when those differ, in
PostgreSQL's own normalised form: the server parses the model's predicate on an empty temporary
copy of the table (rolled back) and deparses it as it does the stored one, so ``IN (...)`` and
``= ANY (ARRAY[...])``, implicit casts and any spelling of the same expression compare equal and
``alembic check`` stays clean. The index behind every foreign key is described by the runtime
library (``pgkeel.indexes``): the plugin adds it to the model's table before Alembic compares
the table, as ``create_all`` does before it creates the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import ClauseElement, Enum, Index, String, TypeDecorator
from sqlalchemy.types import NullType

from alembic_extensions.probes import literal_sql, stored_form, temporary_copy
from pgkeel.indexes import uncovered_foreign_keys

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Dialect
    from sqlalchemy.types import TypeEngine

__all__ = [  # uncovered_foreign_keys is imported from here too
    "is_invalid",
    "normalise_predicate",
    "predicate",
    "predicate_changed",
    "server_predicate",
    "uncovered_foreign_keys",
]


def _predicate_text(where: Any, dialect: Dialect) -> str | None:  # noqa: ANN401  # str, clause or None
    if where is None:
        return None
    if isinstance(where, ClauseElement):
        return literal_sql(where, dialect, include_table=False)
    return str(where)


def normalise_predicate(
    predicate: str | None, kept_casts: frozenset[str] = frozenset(), *, settled: bool = False
) -> str | None:
    """A predicate (or any expression) in the canonical spelling both sides share.

    Equal spellings mean the same expression; different ones may still be the same expression
    spelt another way, which only PostgreSQL can settle (see ``expressions``). ``kept_casts``:
    see ``text_casts_kept``; ``settled``: the caller asks PostgreSQL when spellings differ, so
    an expression's cast to text is kept too (it may change the value).
    """
    if predicate is None:
        return None
    # Loaded on the first expression: a schema without one never imports the module. Imported
    # from the package: ``from alembic_extensions.expressions import ...`` would look up the
    # module's ``__path__`` on every call, an ``AttributeError`` (see ``plugin``'s notes).
    from alembic_extensions import expressions  # noqa: PLC0415

    return (
        expressions.canonical_expression(predicate, kept_casts, keep_expression_casts=settled)
        or None
    )


def _cast_to_text_by_postgresql(type_: TypeEngine[Any]) -> bool:
    """Whether PostgreSQL may write ``(column)::text`` itself for a column of this type.

    It does for ``varchar`` and ``char`` (and ``text`` needs no cast), and so for an ``Enum``
    stored as ``varchar``; a type the plugin cannot see through (a ``TypeDecorator``, an
    unknown type) counts as one too: its cast is left out, as for any string.
    """
    if isinstance(type_, TypeDecorator | NullType):
        return True
    if isinstance(type_, Enum):
        return not type_.native_enum
    return isinstance(type_, String)


def text_casts_kept(table: Table | None) -> frozenset[str]:
    """The columns of ``table`` whose ``::text`` cast changes a comparison (enum, uuid, number).

    Compared in the canonical spelling, ``status::text > 'b'`` and ``status > 'b'`` stay apart
    on an enum column, where PostgreSQL never adds the cast itself. Read anew at each call (one
    ``isinstance`` a column, asked only for tables with a partial index, a named check or a
    generated column): a model changed in place between two runs is never read stale.
    """
    if table is None:
        return frozenset()
    return frozenset(
        column.name for column in table.columns if not _cast_to_text_by_postgresql(column.type)
    )


_MODEL_PREDICATES: WeakKeyDictionary[Index, tuple[object, frozenset[str], str | None]]
_MODEL_PREDICATES = WeakKeyDictionary()


def predicate(index: Index, dialect: Dialect, kept_casts: frozenset[str]) -> str | None:
    """The normalised ``WHERE`` predicate of a model or reflected index.

    ``kept_casts``: the model table's ``text_casts_kept``, for both sides. A model's predicate
    is compiled once per index and kept while its ``WHERE`` and ``kept_casts`` stay the same
    (autogenerate runs often in one process; a model changed in place is compiled again).
    """
    where = index.dialect_options["postgresql"]["where"]
    kept = _MODEL_PREDICATES.get(index)
    if kept is not None and kept[0] is where and kept[1] == kept_casts:
        return kept[2]
    normalised = normalise_predicate(_predicate_text(where, dialect), kept_casts, settled=True)
    if isinstance(where, ClauseElement):
        _MODEL_PREDICATES[index] = (where, kept_casts, normalised)
    return normalised


def is_invalid(reflected: Index) -> bool:
    """Whether the database marks ``reflected`` INVALID (a concurrent build that failed).

    PostgreSQL keeps such an index up to date on every write but never reads it, and a unique
    one is no sure rule: it has to be built again.
    """
    return bool(reflected.reflect_only_elements.get("postgresql", {}).get("invalid"))


def server_predicate(connection: Connection, table: Table, where: str) -> str | None:
    """``where`` as PostgreSQL stores the predicate of an index on ``table``; None if it cannot.

    The index is built on an empty temporary copy of the table's columns inside a savepoint
    that is rolled back: nothing is left behind and ``table`` itself is only read-locked. A
    server that refuses (a read-only standby) gives None, and the text comparison stands.
    """
    statements = [
        temporary_copy("pgkeel_predicate", table.schema, table.name),
        f"CREATE INDEX ON pgkeel_predicate ((true)) WHERE {where}",
    ]
    read = (
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index"
        " WHERE indrelid = 'pgkeel_predicate'::regclass"
    )
    return stored_form(connection, statements, read)


def predicate_changed(
    model: Index, reflected: Index, dialect: Dialect, connection: Connection | None = None
) -> bool:
    """Whether the model's partial-index predicate differs from the database's.

    With a ``connection``, predicates that differ as text are compared as PostgreSQL stores
    them (see ``server_predicate``). An index that is partial on neither side (nearly every
    one) is settled by reading both options, before the table's casts are worked out.
    """
    where = model.dialect_options["postgresql"]["where"]
    stored = reflected.dialect_options["postgresql"]["where"]
    if where is None and stored is None:
        return False
    kept_casts = text_casts_kept(model.table)
    if predicate(model, dialect, kept_casts) == predicate(reflected, dialect, kept_casts):
        return False
    model_where = _predicate_text(where, dialect)
    if connection is None or model_where is None or stored is None or model.table is None:
        return True
    return server_predicate(connection, model.table, model_where) != str(stored)
