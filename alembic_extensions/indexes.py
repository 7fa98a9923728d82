"""Indexes autogenerate must get right: one behind every foreign key, and partial-index predicates.

PostgreSQL does not index a foreign key's columns by itself: deleting a parent row then scans
the child table, and joins on the key scan too. Every foreign key is covered by an index whose
leading columns are the key's columns; when the model declares none, pgkeel adds
``idx_<table>_<columns>`` to the model's table (so ``create_all`` and autogenerate agree), unless
the foreign key opts out with ``info=pgkeel.naming.allow("fk-index")``.

Alembic compares an index's columns but not its ``WHERE`` predicate; ``predicate_changed``
compares both sides' predicates after the normalisation PostgreSQL applies when it stores one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import ClauseElement, Index, PrimaryKeyConstraint, UniqueConstraint

from alembic_extensions.rules import allowed, key_names
from pgkeel.naming import index_name

if TYPE_CHECKING:
    from sqlalchemy import ForeignKeyConstraint, Table
    from sqlalchemy.engine import Dialect

FK_INDEX_RULE = "fk-index"
IMPLIED_INFO_KEY = "pgkeel_implied"
"""``info`` key on an index pgkeel added to a table to cover a foreign key."""

_MULTIWORD_CASTS = re.compile(
    r"::(timestamp|time) with(out)? time zone|::character varying|::double precision"
    r"|::bit varying"
)
_CAST = re.compile(r"::[a-z_][a-z0-9_]*(\[\])?")
_NOISE = re.compile(r"[\s()\"]")


def _keyed_columns(item: Index | UniqueConstraint | PrimaryKeyConstraint) -> list[str]:
    if isinstance(item, Index):
        return [getattr(expr, "name", "") for expr in item.expressions]
    return [column.name for column in item.columns]  # constraints have no .expressions


def _fk_columns(fk: ForeignKeyConstraint) -> list[str]:
    return [element.parent.name for element in fk.elements]


def is_covered(table: Table, columns: list[str]) -> bool:
    """Whether an index, unique constraint or primary key of ``table`` starts with ``columns``."""
    wanted = set(columns)
    keyed: list[Index | UniqueConstraint | PrimaryKeyConstraint] = [
        *table.indexes,
        *(c for c in table.constraints if isinstance(c, UniqueConstraint | PrimaryKeyConstraint)),
    ]
    return any(set(key_names(item)[: len(columns)]) == wanted for item in keyed)


def _opted_out(table: Table, fk: ForeignKeyConstraint) -> bool:
    columns = [element.parent for element in fk.elements]
    return allowed(FK_INDEX_RULE, fk, *fk.elements, *columns, table)


def uncovered_foreign_keys(table: Table) -> list[ForeignKeyConstraint]:
    """Foreign keys of ``table`` with no index starting with their columns and no opt-out."""
    return [
        fk
        for fk in sorted(table.foreign_key_constraints, key=_fk_columns)
        if not is_covered(table, _fk_columns(fk)) and not _opted_out(table, fk)
    ]


def add_foreign_key_indexes(table: Table) -> list[Index]:
    """Add ``idx_<table>_<columns>`` for each uncovered foreign key; return the new indexes."""
    added = []
    for fk in uncovered_foreign_keys(table):
        columns = _fk_columns(fk)
        if is_covered(table, columns):  # two foreign keys on the same columns need one index
            continue
        name = index_name(table.name, columns)
        added.append(
            Index(name, *(table.c[column] for column in columns), info={IMPLIED_INFO_KEY: True})
        )
    return added


def _predicate_text(where: Any, dialect: Dialect) -> str | None:  # noqa: ANN401  # str, clause or None
    if where is None:
        return None
    if isinstance(where, ClauseElement):
        compiled = where.compile(
            dialect=dialect, compile_kwargs={"literal_binds": True, "include_table": False}
        )
        return str(compiled)
    return str(where)


def normalise_predicate(predicate: str | None) -> str | None:
    """A predicate without casts, quotes, parentheses, spaces or case: what both sides share."""
    if predicate is None:
        return None
    text = _MULTIWORD_CASTS.sub("", predicate.lower()).replace("!=", "<>")
    return _NOISE.sub("", _CAST.sub("", text)) or None


_MODEL_PREDICATES: WeakKeyDictionary[Index, str | None] = WeakKeyDictionary()


def predicate(index: Index, dialect: Dialect) -> str | None:
    """The normalised ``WHERE`` predicate of a model or reflected index.

    A model's predicate is compiled once per index: autogenerate runs often in one process.
    """
    if index in _MODEL_PREDICATES:
        return _MODEL_PREDICATES[index]
    where = index.dialect_options["postgresql"]["where"]
    normalised = normalise_predicate(_predicate_text(where, dialect))
    if isinstance(where, ClauseElement):
        _MODEL_PREDICATES[index] = normalised
    return normalised


def predicate_changed(model: Index, reflected: Index, dialect: Dialect) -> bool:
    """Whether the model's partial-index predicate differs from the database's."""
    return predicate(model, dialect) != predicate(reflected, dialect)
