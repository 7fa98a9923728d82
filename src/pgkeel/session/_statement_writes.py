"""The tenant an ORM ``insert()`` / ``update()`` statement writes, checked before it runs.

On a role that row-level security binds, the policy's ``WITH CHECK`` already refuses a row of
another tenant; on a role that bypasses it (system jobs, a development superuser) only this
check stands: inside ``tenant_context(t)``, every ``tenant_id`` a statement writes must be ``t``,
given as a value pgkeel can read (a SQL expression it cannot evaluate is refused).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnClause, Table
from sqlalchemy.sql.elements import BindParameter

from pgkeel.errors import CrossTenantWriteError
from pgkeel.session import _sqlalchemy_private as private
from pgkeel.tenancy import TENANT_COLUMN, TenantMixin, is_tenant_table

if TYPE_CHECKING:
    from sqlalchemy.orm import ORMExecuteState

_UNREADABLE = object()


def _key_name(key: object) -> str | None:
    if isinstance(key, str):
        return key
    return getattr(key, "key", None) or getattr(key, "name", None)


def _tenant_values(row: Mapping[Any, Any] | Any, table: Any) -> list[Any]:  # noqa: ANN401
    if isinstance(row, Mapping):
        return [value for key, value in row.items() if _key_name(key) == TENANT_COLUMN]
    names = [column.name for column in table.c]
    return [row[names.index(TENANT_COLUMN)]] if TENANT_COLUMN in names else []


def _is_tenant_column(value: object) -> bool:
    """``tenant_id`` of a tenant table (or alias): rows the filters already limit to the tenant."""
    if not isinstance(value, ColumnClause) or value.name != TENANT_COLUMN:
        return False
    table = getattr(value.table, "element", value.table)
    return isinstance(table, Table) and is_tenant_table(table)


def _plain(value: object) -> object:
    if isinstance(value, BindParameter):
        return value.effective_value
    if hasattr(value, "__clause_element__") or hasattr(value, "_is_clause_element"):
        return value if _is_tenant_column(value) else _UNREADABLE
    return value


def _refuse(state: ORMExecuteState, value: object, scope: uuid.UUID) -> CrossTenantWriteError:
    what = "a SQL expression pgkeel cannot evaluate" if value is _UNREADABLE else f"{value!r}"
    verb = "INSERT into" if state.is_insert else "UPDATE of"
    model = state.bind_mapper.class_.__name__ if state.bind_mapper else "a tenant model"
    return CrossTenantWriteError(
        f"Refusing an ORM {verb} {model} that sets tenant_id to {what}, inside "
        f"tenant_context({scope}). Fix: leave tenant_id out (the current tenant is filled in), "
        "or write another tenant's rows inside its own tenant_context, or in a system job under "
        "tenant_context(ALL_TENANTS)."
    )


def _written_values(state: ORMExecuteState) -> list[Any]:
    statement = state.statement
    table = getattr(statement, "table", None)
    values = [v for row in private.dml_value_rows(statement) for v in _tenant_values(row, table)]
    parameters = state.parameters
    rows = parameters if isinstance(parameters, list) else [parameters] if parameters else []
    values.extend(v for row in rows for v in _tenant_values(row, table))
    from_select = private.insert_from_select(statement)
    if from_select is not None:
        names, select = from_select
        positions = [i for i, name in enumerate(names) if _key_name(name) == TENANT_COLUMN]
        values.extend(list(select.selected_columns)[i] for i in positions)
    return values


def check_written_tenant(state: ORMExecuteState, scope: uuid.UUID) -> None:
    """Refuse an ORM INSERT/UPDATE of a tenant model that writes a tenant_id but ``scope``."""
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantMixin):
        return
    for value in _written_values(state):
        plain = _plain(value)
        if plain is _UNREADABLE:
            raise _refuse(state, plain, scope)
        if isinstance(plain, ColumnClause):
            continue
        if not (plain == scope or plain == str(scope)):
            raise _refuse(state, plain, scope)
