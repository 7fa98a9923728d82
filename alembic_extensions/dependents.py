"""Which columns an index or unique constraint uses: the ones whose ``DROP COLUMN`` drops it.

PostgreSQL drops, with a column, every index that uses it anywhere: as a key column, inside a
key expression (``lower(email)``), in the predicate of a partial index (``WHERE NOT
archived``) or as an ``INCLUDE`` column. Autogenerate keeps the definition of each index and
unique constraint it drops (its reverse); these functions read the columns from it, so that a
column drop is never taken for harmless to a rule that only names the column in an expression
or a predicate.

They also say what a unique rule enforces (``RuleShape``: its key, its predicate), so that a
dropped rule counts as replaced only by a new rule that enforces at least as much
(``replaces``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alembic.operations import MigrateOperation, ops
from sqlalchemy import ClauseElement, Column, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.visitors import iterate

from alembic_extensions.ops import (
    ConcurrentCreateIndexOp,
    ConcurrentDropIndexOp,
    DroppedWithTableOp,
    DropReplacedRuleOp,
)
from alembic_extensions.probes import literal_sql
from pgkeel.softdelete import is_soft_delete_table
from pgkeel.tenancy import TENANT_COLUMN

RuleDefinition = ops.CreateIndexOp | ops.CreateUniqueConstraintOp

_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')


def sql_identifiers(sql_text: str) -> set[str]:
    """The words of an SQL expression or predicate, as PostgreSQL folds them.

    String literals are left out; key words (``NOT``, ``IS``) and function names come too, so
    callers intersect the result with the column names they look for.
    """
    bare = _STRING_LITERAL.sub("", sql_text)
    return {
        quoted.replace('""', '"') if quoted else word.lower()
        for quoted, word in _IDENTIFIER.findall(bare)
    }


def _element_columns(element: Any) -> set[str]:  # noqa: ANN401  # a name, Column or expression
    """The columns one element of an index names: a column's name, or those of an expression."""
    name = getattr(element, "name", None)
    if isinstance(name, str):
        return {name}
    return sql_identifiers(str(element))


def rule_definition(op: MigrateOperation) -> RuleDefinition | None:
    """The index or unique constraint that ``op`` drops, as autogenerate saw it; else None."""
    if isinstance(op, ConcurrentDropIndexOp | DroppedWithTableOp):
        op = op.drop
    definition = getattr(op, "_reverse", None)
    if isinstance(definition, ConcurrentCreateIndexOp):
        definition = definition.create
    if isinstance(op, ops.DropIndexOp | ops.DropConstraintOp | DropReplacedRuleOp) and isinstance(
        definition, RuleDefinition
    ):
        return definition
    return None


def key_columns(definition: RuleDefinition) -> set[str]:
    """The columns the rule's key is made of, plain or inside an expression."""
    return set().union(*(_element_columns(element) for element in definition.columns))


def columns_used(definition: RuleDefinition) -> set[str]:
    """Every column the rule uses: key, expressions, predicate and ``INCLUDE`` columns."""
    used = key_columns(definition)
    where = definition.kw.get("postgresql_where")
    if where is not None:
        used |= sql_identifiers(str(where))
    for included in definition.kw.get("postgresql_include") or ():
        used |= _element_columns(included)
    return used


SOFT_DELETE_PREDICATE = "deleted_at IS NULL"
"""The predicate pgkeel gives a unique rule of a soft-delete table (live rows only)."""
_POSTGRESQL: postgresql.base.PGDialect = postgresql.dialect()  # type: ignore[no-untyped-call]


def rule_text(element: Any, renames: Mapping[str, str] | None = None) -> str | None:  # noqa: ANN401  # an expression
    """An element or predicate in the canonical spelling, its renamed columns renamed.

    None when it cannot be read: such a rule is never taken for the same rule.
    """
    renames = renames or {}
    name = element.name if isinstance(element, Column) else None
    if isinstance(name, str):
        return renames.get(name, name)
    # Loaded on a rule's first expression, as the other comparisons load them.
    from alembic_extensions.expressions import (  # noqa: PLC0415
        canonical_expression,
        with_columns_renamed,
    )

    sql_text = (
        literal_sql(element, _POSTGRESQL, include_table=False)
        if isinstance(element, ClauseElement)
        else str(element)
    )
    renamed = with_columns_renamed(sql_text, renames)
    return None if renamed is None else canonical_expression(renamed)


@dataclass(frozen=True)
class RuleShape:
    """What a unique rule enforces: its key elements and the rows it covers."""

    name: str
    key: frozenset[str]
    """Each key element in the canonical spelling (a column's name, an expression's text)."""
    predicate: str | None
    """The canonical predicate of a partial rule; None when the rule covers every row."""
    nulls_not_distinct: bool = False
    soft_delete: bool = False
    """Whether its table is a soft-delete table (only known of a rule the model declares)."""


def rule_shape(  # noqa: PLR0913  # what a rule is made of
    name: str,
    elements: Iterable[Any],
    predicate: Any = None,  # noqa: ANN401  # an expression or its text
    *,
    nulls_not_distinct: bool = False,
    soft_delete: bool = False,
    renames: Mapping[str, str] | None = None,
) -> RuleShape | None:
    """The shape of a rule; None when an element or the predicate cannot be read."""
    key = [rule_text(element, renames) for element in elements]
    where = None if predicate is None else rule_text(predicate, renames)
    if None in key or (predicate is not None and where is None):
        return None
    return RuleShape(
        name,
        frozenset(str(element) for element in key),
        where,
        nulls_not_distinct=nulls_not_distinct,
        soft_delete=soft_delete,
    )


def _model_table(elements: Iterable[Any]) -> Table | None:
    """The model table a rule's columns (or its predicate's) belong to, when they say."""
    for element in elements:
        if not isinstance(element, ClauseElement):
            continue
        for part in iterate(element):
            table = getattr(part, "table", None)
            if isinstance(part, Column) and isinstance(table, Table):
                return table
    return None


def definition_shape(
    definition: RuleDefinition, renames: Mapping[str, str] | None = None
) -> RuleShape | None:
    """The shape of the index or unique constraint an operation creates (or drops, reversed)."""
    where = definition.kw.get("postgresql_where")
    name = (
        definition.index_name
        if isinstance(definition, ops.CreateIndexOp)
        else definition.constraint_name
    )
    elements = list(definition.columns)
    table = _model_table([*elements, where])
    return rule_shape(
        str(name),
        elements,
        where,
        nulls_not_distinct=bool(definition.kw.get("postgresql_nulls_not_distinct")),
        soft_delete=table is not None and is_soft_delete_table(table),
        renames=renames,
    )


def _no_narrower(new: RuleShape, old: RuleShape) -> bool:
    """Whether ``new`` covers every row ``old`` covers (live rows only on soft delete)."""
    if new.predicate is None or new.predicate == old.predicate:
        return True
    if not new.soft_delete:
        return False
    live = [SOFT_DELETE_PREDICATE]
    if old.predicate is not None:
        live.append(f"{SOFT_DELETE_PREDICATE} AND ({old.predicate})")
    return new.predicate in {rule_text(predicate) for predicate in live}


def replaces(new: RuleShape, old: RuleShape) -> bool:
    """Whether unique rule ``new`` enforces at least what ``old`` did.

    Its key is made of the old key's elements (the ``tenant_id`` that tenancy puts first aside,
    never alone), its predicate is no narrower (none, the old one, or the soft-delete predicate
    on a soft-delete table, with the old one's after it), and NULLs stay not distinct when they
    were.
    """
    own = new.key - {TENANT_COLUMN}
    keyed = new.key <= old.key or (bool(own) and own <= old.key)
    nulls = new.nulls_not_distinct or not old.nulls_not_distinct
    return keyed and nulls and _no_narrower(new, old)
