"""Which columns an index or unique constraint uses: the ones whose ``DROP COLUMN`` drops it.

PostgreSQL drops, with a column, every index that uses it anywhere: as a key column, inside a
key expression (``lower(email)``), in the predicate of a partial index (``WHERE NOT
archived``) or as an ``INCLUDE`` column. Autogenerate keeps the definition of each index and
unique constraint it drops (its reverse); these functions read the columns from it, so that a
column drop is never taken for harmless to a rule that only names the column in an expression
or a predicate.
"""

from __future__ import annotations

import re
from typing import Any

from alembic.operations import MigrateOperation, ops

from alembic_extensions.ops import (
    ConcurrentCreateIndexOp,
    ConcurrentDropIndexOp,
    DroppedWithTableOp,
    DropReplacedRuleOp,
)

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
