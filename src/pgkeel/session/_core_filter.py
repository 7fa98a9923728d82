"""The tenant and ``deleted_at`` filters written into a Core expression's SELECTs.

``with_expression()`` expressions reach the SQL as written: the loader criteria of the hooks do
not apply to their subqueries. Every SELECT inside such an expression gets
``<t>.tenant_id = <tenant>`` and ``<t>.deleted_at IS NULL`` for each tenant or soft-delete table
(or alias of one) in its FROM clause.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Alias, Join, Table, false
from sqlalchemy.sql.visitors import cloned_traverse

from pgkeel.session import _sqlalchemy_private as private
from pgkeel.softdelete import is_soft_delete_table
from pgkeel.tenancy import ALL_TENANTS, TENANT_COLUMN, TenantScope, is_tenant_table

if TYPE_CHECKING:
    from collections.abc import Iterator


def base_tables(froms: Any) -> Iterator[tuple[Any, Table]]:  # noqa: ANN401  # FROM objects
    """``(selectable, table)`` for each table or alias of a table among ``froms``, joins opened."""
    for item in froms:
        if isinstance(item, Join):
            yield from base_tables((item.left, item.right))
        elif isinstance(item, Table):
            yield item, item
        elif isinstance(item, Alias) and isinstance(item.element, Table):
            yield item, item.element


def from_conditions(froms: Any, scope: TenantScope | None, *, live_only: bool) -> list[Any]:  # noqa: ANN401
    """``tenant_id = <tenant>`` and ``deleted_at IS NULL`` for each table (or alias) in ``froms``.

    No tenant set: ``false()`` for a tenant table; ``ALL_TENANTS``: no tenant condition.
    """
    conditions = []
    for selectable, table in base_tables(froms):
        if is_tenant_table(table) and scope is not ALL_TENANTS:
            column = selectable.c[TENANT_COLUMN]
            conditions.append(column == scope if isinstance(scope, uuid.UUID) else false())
        if live_only and is_soft_delete_table(table):
            conditions.append(selectable.c.deleted_at.is_(None))
    return conditions


def _conditions(select: Any, scope: TenantScope | None, *, live_only: bool) -> list[Any]:  # noqa: ANN401
    return from_conditions(select.get_final_froms(), scope, live_only=live_only)


def filtered(expression: Any, scope: TenantScope | None, *, live_only: bool) -> Any:  # noqa: ANN401
    """A copy of ``expression`` whose SELECTs read only ``scope``'s (live) rows."""

    def visit_select(select: Any) -> None:  # noqa: ANN401
        conditions = _conditions(select, scope, live_only=live_only)
        if conditions:
            private.add_where(select, conditions)

    return cloned_traverse(expression, {}, {"select": visit_select})
