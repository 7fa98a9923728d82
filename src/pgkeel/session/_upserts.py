"""An ORM ``insert().on_conflict_do_update()`` updates only a live row of the current tenant.

The conflict update writes a row that already exists, found by a unique index that no filter
limits: on a role that bypasses row-level security it may be another tenant's row (an ``id``, or
a unique key that tenant holds), and on every role a soft-deleted row. The hooks add to the
``DO UPDATE ... WHERE``:

- inside ``tenant_context(t)``, a condition that raises on a row of another tenant, as the
  policy's ``USING`` does on the runtime role (reported as ``CrossTenantWriteError`` by
  ``refused_conflict``): the insert of the caller's row did not happen, which must not pass
  unnoticed;
- without ``include_deleted=True``, ``deleted_at IS NULL``: as an ORM ``update()``, the conflict
  update leaves a soft-deleted row as it is (the statement inserts and updates nothing for it,
  and ``RETURNING`` omits it).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

import psycopg.errors
from sqlalchemy import Boolean, Text, and_, case, cast, literal, true

from pgkeel.errors import CrossTenantWriteError
from pgkeel.session import _sqlalchemy_private as private
from pgkeel.softdelete import is_soft_delete_table
from pgkeel.tenancy import TENANT_COLUMN, TenantScope, is_tenant_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Mapper
    from sqlalchemy.sql.base import Executable

_OTHER_TENANT: Final = "pgkeel: ON CONFLICT DO UPDATE met a row of tenant "
"""The start of the text PostgreSQL fails to read as a boolean on a row of another tenant."""


def _refusing_other_tenants(table: Any, scope: uuid.UUID) -> Any:  # noqa: ANN401  # a Table
    """True for a row of ``scope``; an error raised by PostgreSQL for any other row.

    The failing cast reads the row's own ``tenant_id``, so PostgreSQL cannot fold it into a
    constant (and raise) while planning: it fails only for a conflicting row of another tenant.
    """
    column = table.c[TENANT_COLUMN]
    message = literal(_OTHER_TENANT, Text) + cast(column, Text)
    return case((column == scope, true()), else_=cast(message, Boolean))


def _guards(table: Any, scope: TenantScope | None, *, live_only: bool) -> list[Any]:  # noqa: ANN401
    guards = []
    if isinstance(scope, uuid.UUID) and is_tenant_table(table):
        guards.append(_refusing_other_tenants(table, scope))
    if live_only and is_soft_delete_table(table):
        guards.append(table.c.deleted_at.is_(None))
    return guards


def guard_conflict_update(
    statement: Executable, mapper: Mapper[Any], scope: TenantScope | None, *, live_only: bool
) -> Executable:
    """``statement`` whose conflict update touches only a live row of ``scope`` (see the module)."""
    table = getattr(statement, "table", None)
    table = mapper.local_table if table is None else table
    guards = _guards(table, scope, live_only=live_only)
    if not guards:
        return statement
    given = private.conflict_update(statement).update_whereclause  # type: ignore[union-attr]
    where = and_(*guards) if given is None else and_(*guards, given)
    return private.with_conflict_update_where(statement, where)


def refused_conflict(error: BaseException) -> CrossTenantWriteError | None:
    """The error PostgreSQL raised for a conflict with another tenant's row, as pgkeel's."""
    if not isinstance(error, psycopg.errors.InvalidTextRepresentation):
        return None
    text = str(error)
    if _OTHER_TENANT not in text:
        return None
    table = getattr(error.diag, "table_name", None) or "a tenant table"
    return CrossTenantWriteError(
        f"Refusing an ORM insert().on_conflict_do_update() into {table}: the row it conflicts "
        "with belongs to another tenant (a unique key or id that tenant holds), so neither the "
        "insert nor the update may happen. Fix: choose a key of the current tenant's rows "
        "(a unique index that includes tenant_id), or write that tenant's rows inside its own "
        "tenant_context."
    )
