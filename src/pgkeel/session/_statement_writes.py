"""The tenant an ORM ``insert()`` / ``update()`` statement writes, checked before it runs.

On a role that row-level security binds, the policy's ``WITH CHECK`` already refuses a row of
another tenant; on a role that bypasses it (system jobs, a development superuser) only this
check stands: inside ``tenant_context(t)``, every ``tenant_id`` a statement writes (its values,
its rows, the ``set_`` of ``on_conflict_do_update()``) must be ``t``, given as a value pgkeel can
read (a SQL expression it cannot evaluate is refused), or copied from a row the hooks limit to
``t``: a table the UPDATE reads (target or ``FROM``), the ``excluded`` row of a conflict, or
an entity selected by ``insert().from_select()``. A ``tenant_id`` selected from a ``Table``
object, which loader criteria never reach, is refused unless the SELECT itself says
``WHERE <table>.tenant_id = t``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnClause, Table
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

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
    """``tenant_id`` of a tenant table (or alias of one) or of the ``excluded`` row of a conflict.

    The tables an ORM UPDATE reads are filtered to the tenant (its target by loader criteria,
    its other FROMs by ``_with_filtered_extra_froms``), and ``excluded`` holds the inserted row,
    whose values are checked; ``from_select`` columns are checked by ``_is_filtered_source``.
    """
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


def _model_name(state: ORMExecuteState) -> str:
    """The class written to, for an error message."""
    return state.bind_mapper.class_.__name__ if state.bind_mapper else "a tenant model"


def _refuse(state: ORMExecuteState, value: object, scope: uuid.UUID) -> CrossTenantWriteError:
    what = "a SQL expression pgkeel cannot evaluate" if value is _UNREADABLE else f"{value!r}"
    verb = "INSERT into" if state.is_insert else "UPDATE of"
    model = _model_name(state)
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
    conflict = private.conflict_update(statement)
    if conflict is not None:
        given = conflict.update_values_to_set  # a dict in SQLAlchemy 2.1, pairs before
        pairs = given.items() if isinstance(given, Mapping) else given
        values.extend(value for key, value in pairs if _key_name(key) == TENANT_COLUMN)
    return values


def _selected_tenants(statement: object) -> tuple[list[Any], Any]:
    """The columns an ``insert().from_select()`` writes into ``tenant_id``, and its SELECT."""
    from_select = private.insert_from_select(statement)  # type: ignore[arg-type]
    if from_select is None:
        return [], None
    names, select = from_select
    positions = [i for i, name in enumerate(names) if _key_name(name) == TENANT_COLUMN]
    return [list(select.selected_columns)[i] for i in positions], select


def _top_level_criteria(select: Any) -> list[Any]:  # noqa: ANN401  # a Select
    where = getattr(select, "whereclause", None)
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        return list(where.clauses)
    return [] if where is None else [where]


def _says_tenant(criterion: object, column: ColumnClause[Any], scope: uuid.UUID) -> bool:
    """Whether ``criterion`` is ``<column> = scope``."""
    if not isinstance(criterion, BinaryExpression) or criterion.operator is not operators.eq:
        return False
    bound = criterion.right
    return (
        criterion.left.compare(column)
        and isinstance(bound, BindParameter)
        and bound.effective_value in {scope, str(scope)}
    )


def _is_filtered_source(column: ColumnClause[Any], select: Any, scope: uuid.UUID) -> bool:  # noqa: ANN401
    """Whether the rows ``column`` is selected from are limited to ``scope``.

    An entity's column is (its loader criteria); a ``Table`` object's only by the SELECT's own
    ``WHERE <column> = scope``.
    """
    if private.orm_entity(column) is not None:
        return True
    return any(_says_tenant(c, column, scope) for c in _top_level_criteria(select))


def _refuse_unfiltered_source(
    state: ORMExecuteState, column: ColumnClause[Any], scope: uuid.UUID
) -> CrossTenantWriteError:
    source = getattr(column.table, "name", None) or "a table"
    model = _model_name(state)
    return CrossTenantWriteError(
        f"Refusing an ORM INSERT into {model} from a SELECT whose tenant_id is {source}.tenant_id "
        f"of a Table object, inside tenant_context({scope}): pgkeel filters mapped entities, "
        "not Table objects, so on a role that bypasses row-level security it would copy every "
        "tenant's rows. Fix: select the mapped class's column (Model.tenant_id) or leave "
        "tenant_id out of the INSERT (the current tenant is filled in), or add "
        f".where({source}.c.tenant_id == <the current tenant>) to the SELECT."
    )


def _check_value(state: ORMExecuteState, value: object, scope: uuid.UUID) -> None:
    plain = _plain(value)
    if plain is _UNREADABLE:
        raise _refuse(state, plain, scope)
    if isinstance(plain, ColumnClause):
        return
    if not (plain == scope or plain == str(scope)):
        raise _refuse(state, plain, scope)


def check_written_tenant(state: ORMExecuteState, scope: uuid.UUID) -> None:
    """Refuse an ORM INSERT/UPDATE of a tenant model that writes a tenant_id but ``scope``."""
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantMixin):
        return
    for value in _written_values(state):
        _check_value(state, value, scope)
    selected, select = _selected_tenants(state.statement)
    for column in selected:
        if _is_tenant_column(column) and not _is_filtered_source(column, select, scope):
            raise _refuse_unfiltered_source(state, column, scope)
        _check_value(state, column, scope)
