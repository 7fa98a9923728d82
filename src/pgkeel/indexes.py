"""The index behind every foreign key, which PostgreSQL does not make by itself.

Without one, deleting a parent row scans the child table, and so does a join on the key. A
foreign key is covered by an index, unique constraint or primary key whose leading columns are
the key's columns; when the model declares none, ``add_foreign_key_indexes`` adds
``idx_<table>_<columns>`` to the table, unless the foreign key (or its column, or the table)
opts out with ``info=pgkeel.naming.allow("fk-index")``. ``create_all`` adds them just before it
creates the tables (``index_foreign_keys``, set on every pgkeel metadata) and autogenerate when
it compares them, so both build the same indexes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    Column,
    ColumnElement,
    Index,
    PrimaryKeyConstraint,
    TextClause,
    UniqueConstraint,
    and_,
    event,
    text,
)
from sqlalchemy.sql.expression import Grouping

from pgkeel import rules
from pgkeel.naming import allows, index_name

if TYPE_CHECKING:
    from sqlalchemy import ForeignKeyConstraint, MetaData, Table
    from sqlalchemy.engine import Connection

FK_INDEX_RULE: Final = rules.FK_INDEX
IMPLIED_INFO_KEY: Final = "pgkeel_implied"
"""``info`` key on an index pgkeel added to a table to cover a foreign key."""


def key_names(item: Index | UniqueConstraint | PrimaryKeyConstraint) -> list[str]:
    """The column names an index or key constraint is on, in order ("" for an expression)."""
    if isinstance(item, Index):
        return [getattr(expr, "name", "") or "" for expr in item.expressions]
    return [column.name for column in item.columns]


def unique_rules(table: Table) -> list[UniqueConstraint | Index]:
    """The unique constraints, then the unique indexes, of ``table`` (a list: safe to replace)."""
    constraints = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    return [*constraints, *(index for index in table.indexes if index.unique)]


def detach_unique_rule(table: Table, rule: UniqueConstraint | Index) -> None:
    """Take ``rule`` off ``table`` and clear the ``unique=``/``index=`` column flag it came from."""
    if isinstance(rule, Index):
        table.indexes.discard(rule)
        for column in rule.columns:
            column.index = False
    else:
        table.constraints.discard(rule)
        for column in rule.columns:
            column.unique = False


def rule_keys(rule: UniqueConstraint | Index) -> list[Any]:
    """What ``rule`` is on, in order: its columns, and an index's expressions too."""
    return list(rule.expressions) if isinstance(rule, Index) else list(rule.columns)


def led_by(keys: list[Any], lead: Column[Any] | None) -> list[Any]:
    """``keys`` led by the column ``lead`` (added when missing, moved first when elsewhere)."""
    if lead is None:
        return keys
    others = [key for key in keys if not (isinstance(key, Column) and key.name == lead.name)]
    return [lead, *others]


def rule_predicate(rule: UniqueConstraint | Index) -> ColumnElement[bool] | TextClause | None:
    """The ``WHERE`` of a partial unique index (a string becomes ``text()``); None otherwise."""
    if not isinstance(rule, Index):
        return None
    where = rule.dialect_options["postgresql"]["where"]
    return text(where) if isinstance(where, str) else where


def both(
    first: ColumnElement[bool] | None, second: ColumnElement[bool] | TextClause | None
) -> ColumnElement[bool] | TextClause | None:
    """``first AND (second)``; either alone when the other is None."""
    if first is None or second is None:
        return first if second is None else second
    grouped = Grouping(second) if isinstance(second, TextClause) else second
    return and_(first, grouped)


def unique_index_like(
    table: Table,
    rule: UniqueConstraint | Index,
    name: str,
    *,
    lead: Column[Any] | None = None,
    where: ColumnElement[bool] | None = None,
) -> Index:
    """A unique index on ``table`` that enforces ``rule`` with what its name says changed.

    It keeps the rule's columns and expressions (led by ``lead``), operator classes,
    ``INCLUDE``, ``NULLS NOT DISTINCT`` and method; its predicate is ``where`` AND the rule's own.
    """
    options = {k: v for k, v in rule.dialect_kwargs.items() if k != "postgresql_where"}
    index = Index(
        name,
        *led_by(rule_keys(rule), lead),
        unique=True,
        postgresql_where=both(where, rule_predicate(rule)),
        info=dict(rule.info),
        **options,
    )
    if index.table is None:  # expressions only: no column told the index its table
        table.append_constraint(index)
    return index


_KEY_CONSTRAINTS: Final = (UniqueConstraint, PrimaryKeyConstraint)


def _covering_keys(table: Table) -> list[list[str]]:
    """The column names of each index, unique constraint and primary key of ``table``."""
    keyed: list[Index | UniqueConstraint | PrimaryKeyConstraint] = [
        *table.indexes,
        *(c for c in table.constraints if isinstance(c, _KEY_CONSTRAINTS)),
    ]
    return [key_names(item) for item in keyed]


def _covers(keys: list[list[str]], columns: list[str]) -> bool:
    """Whether one of ``keys`` starts with ``columns``, in any order."""
    wanted = set(columns)
    return any(set(names[: len(columns)]) == wanted for names in keys)


def is_covered(table: Table, columns: list[str]) -> bool:
    """Whether an index, unique constraint or primary key of ``table`` starts with ``columns``."""
    return _covers(_covering_keys(table), columns)


def _fk_columns(fk: ForeignKeyConstraint) -> list[str]:
    return [element.parent.name for element in fk.elements]


def _opted_out(table: Table, fk: ForeignKeyConstraint) -> bool:
    owners = [fk, *fk.elements, *(element.parent for element in fk.elements), table]
    return any(allows(owner, FK_INDEX_RULE) for owner in owners)


def uncovered_foreign_keys(table: Table) -> list[ForeignKeyConstraint]:
    """Foreign keys of ``table`` with no index starting with their columns and no opt-out.

    The table's keys are read once, not once per foreign key.
    """
    foreign_keys = table.foreign_key_constraints
    if not foreign_keys:
        return []
    keys = _covering_keys(table)
    return [
        fk
        for fk in sorted(foreign_keys, key=_fk_columns)
        if not _covers(keys, _fk_columns(fk)) and not _opted_out(table, fk)
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


def _before_create(metadata: MetaData, _connection: Connection, **kw: object) -> None:
    """``before_create`` of the metadata: the tables about to be created get their indexes."""
    tables = kw.get("tables")
    for table in tables if isinstance(tables, list) else metadata.sorted_tables:
        add_foreign_key_indexes(table)


def index_foreign_keys(metadata: MetaData) -> MetaData:
    """Have ``metadata.create_all`` add the index each foreign key needs; return ``metadata``."""
    if not event.contains(metadata, "before_create", _before_create):
        event.listen(metadata, "before_create", _before_create)
    return metadata
