"""Partial-index predicates, which Alembic does not compare.

Alembic compares an index's columns but not its ``WHERE`` predicate; ``predicate_changed``
compares both sides' predicates after the normalisation PostgreSQL applies when it stores one.
The index behind every foreign key is described by the runtime library (``pgkeel.indexes``):
the plugin adds it to the model's table before Alembic compares the table, as ``create_all``
does before it creates the table.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import ClauseElement, Index

from pgkeel.indexes import uncovered_foreign_keys

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

__all__ = [  # uncovered_foreign_keys is imported from here too
    "normalise_predicate",
    "predicate",
    "predicate_changed",
    "uncovered_foreign_keys",
]

_MULTIWORD_CASTS = re.compile(
    r"::(timestamp|time) with(out)? time zone|::character varying|::double precision"
    r"|::bit varying"
)
_CAST = re.compile(r"::[a-z_][a-z0-9_]*(\[\])?")
_NOISE = re.compile(r"[\s()\"]")


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
