"""``column_property()`` and ``query_expression(default_expr=...)`` subqueries pgkeel cannot filter.

The mapper compiles these expressions into every query of their model. Built from mapped
classes (``select(func.count(Invoice.id))``), their subqueries get the hooks' loader criteria
like any ORM statement. Built from ``Table`` objects (``invoices.c.id``, ``invoices.alias()``),
nothing filters them: not ``deleted_at`` on any role, not the tenant on a role that bypasses
row-level security. Such a read is refused, naming the attribute and the fix, unless the
statement opts out of the filter that is missing (``include_deleted=True``,
``tenant_context(ALL_TENANTS)``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Select
from sqlalchemy.sql.visitors import iterate

from pgkeel.errors import UnfilteredReadError
from pgkeel.session._core_filter import base_tables
from pgkeel.softdelete import is_soft_delete_table
from pgkeel.tenancy import is_tenant_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sqlalchemy.orm import Mapper


@dataclass(frozen=True)
class Unfiltered:
    """An attribute whose SQL reads a tenant or soft-delete table that no filter reaches."""

    attribute: str
    table: str
    tenant: bool
    soft_delete: bool


def _entity_tables(select: Select[Any]) -> set[Any]:
    """Tables of the mapped classes ``select`` names in its columns or WHERE clause.

    The hooks' loader criteria reach the FROM entries of those classes; a ``Table`` object no
    mapped class names in that SELECT is left as written.
    """
    found: set[Any] = set()
    for clause in (*select.selected_columns, select.whereclause):
        for element in iterate(clause) if clause is not None else ():
            entity = getattr(element, "_annotations", {}).get("parententity")
            if entity is not None:
                found.update(entity.mapper.tables)
    return found


def _plain_tables(expression: Any) -> Iterator[Any]:  # noqa: ANN401  # a SQL expression
    """Tables read by the SELECTs of ``expression`` as ``Table`` objects, not mapped classes."""
    for element in iterate(expression):
        if not isinstance(element, Select):
            continue
        entities = _entity_tables(element)
        for _selectable, table in base_tables(element.get_final_froms()):
            if table not in entities:
                yield table


def _unfiltered(mapper: Mapper[Any], prop: Any) -> Iterator[Unfiltered]:  # noqa: ANN401
    expression = prop.columns[0] if getattr(prop, "columns", None) else None
    if expression is None or isinstance(expression, Column):
        return
    for table in _plain_tables(expression):
        tenant, soft = is_tenant_table(table), is_soft_delete_table(table)
        if tenant or soft:
            yield Unfiltered(f"{mapper.class_.__name__}.{prop.key}", table.name, tenant, soft)


@functools.lru_cache(maxsize=1024)
def unfiltered_attributes(mapper: Mapper[Any]) -> tuple[Unfiltered, ...]:
    """The attributes of ``mapper`` whose SQL reads such tables (computed once per mapper)."""
    return tuple(found for prop in mapper.column_attrs for found in _unfiltered(mapper, prop))


def refuse_unfiltered(
    mappers: Iterable[Mapper[Any]],
    *,
    tenant_missing: Callable[[], bool],
    deleted_missing: bool,
) -> None:
    """Raise for the first attribute of ``mappers`` that reads rows a missing filter would hide.

    ``tenant_missing`` is asked only when such an attribute reads a tenant table (it may need
    to ask the database whether the role bypasses row-level security).
    """
    for mapper in mappers:
        for found in unfiltered_attributes(mapper):
            if found.soft_delete and deleted_missing:
                raise _refusal(found, tenant_missing=False)
            if found.tenant and tenant_missing():
                raise _refusal(found, tenant_missing=True)


def _refusal(found: Unfiltered, *, tenant_missing: bool) -> UnfilteredReadError:
    missing = "the tenant filter" if tenant_missing else "`deleted_at IS NULL`"
    opt_out = "tenant_context(ALL_TENANTS)" if tenant_missing else "include_deleted=True"
    return UnfilteredReadError(
        f"{found.attribute} is a column_property() or query_expression() default whose subquery "
        f"reads the table {found.table!r} as a Table object: pgkeel's filters reach subqueries "
        f"built from mapped classes only, so {missing} would be missing and the value would "
        "count rows this read must not see. Fix: build the subquery from the mapped class "
        "(select(func.count(Model.id)).where(...)), which pgkeel filters like any query; or, "
        f"if the read means to see those rows, say so with {opt_out}."
    )
