"""ORM UPDATE by primary key (``session.execute(update(M), [rows])``): the tenant's live rows only.

SQLAlchemy runs ``update(M)`` executed with a list of parameter sets as one UPDATE per row,
chosen by the primary key each set gives. It applies no loader criteria there, only the
statement's own WHERE, so the criteria the hooks give every other ORM UPDATE would never reach
these rows: on a role that bypasses row-level security another tenant's row, and on every role
a soft-deleted row, would be written. The hooks write the criteria into the WHERE instead:

- a model stored in one table: the row's own ``tenant_id = <tenant>`` and ``deleted_at IS NULL``,
  as ``update(M).where(...)`` gets them;
- a joined-table subclass, whose own table holds neither column (SQLAlchemy runs one UPDATE per
  table): each row's primary key must be among the tenant's live rows of the base table.

A row outside the criteria is left as it is, as ``update(M).where(...)`` leaves it. SQLAlchemy
cannot copy the written values into the session's objects once the WHERE has criteria
(``synchronize_session="evaluate"``, its default here), so the hooks expire the written
attributes of the objects the rows name: their next access reads them, through the filters.

SQLAlchemy refuses an ORM ``delete()`` by primary key; on a soft-delete model, whose delete is
an UPDATE, the hooks refuse it the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.exc import InvalidRequestError

from pgkeel.session import _sqlalchemy_private as private
from pgkeel.session._core_filter import from_conditions

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Result
    from sqlalchemy.orm import Mapper, ORMExecuteState, Session

    from pgkeel.tenancy import TenantScope


def _key_names(mapper: Mapper[Any]) -> list[str]:
    """The attribute names that carry the primary key in each parameter set."""
    return [mapper.get_property_by_column(column).key for column in mapper.primary_key]


_KEY_PARAMETER: Final = "pgkeel_key_{}"
"""The parameter that repeats a row's primary key (SQLAlchemy reserves the column's own name)."""


def _criteria(mapper: Mapper[Any], scope: TenantScope | None, *, live_only: bool) -> list[Any]:
    """The WHERE criteria that keep each row's UPDATE to a live row of ``scope`` (see the module).

    A joined-table subclass's criterion reads each row's key from ``_KEY_PARAMETER``.
    """
    if len(mapper.tables) == 1:
        return from_conditions([mapper.tables[0]], scope, live_only=live_only)
    base = mapper.base_mapper.local_table.alias()
    conditions = from_conditions([base], scope, live_only=live_only)
    if not conditions:
        return []
    keys = [
        bindparam(_KEY_PARAMETER.format(n), type_=column.type)
        for n, column in enumerate(mapper.primary_key)
    ]
    rows = select(*(base.c[column.name] for column in mapper.primary_key)).where(*conditions)
    return [tuple_(*keys).in_(rows)]


def _with_key_parameters(mapper: Mapper[Any], rows: Sequence[Any]) -> list[dict[str, Any]]:
    """``rows``, each with its primary key repeated as the ``_KEY_PARAMETER``s too."""
    names = _key_names(mapper)
    return [
        {**row, **{_KEY_PARAMETER.format(n): row.get(name) for n, name in enumerate(names)}}
        for row in rows
    ]


def _expire_written(session: Session, mapper: Mapper[Any], rows: Sequence[Any]) -> None:
    """Expire the attributes ``rows`` write on the objects of the session they name."""
    names = _key_names(mapper)
    for row in rows:
        key = mapper.identity_key_from_primary_key(tuple(row.get(name) for name in names))
        obj = session.identity_map.get(key)
        written = [name for name in row if name in mapper.column_attrs and name not in names]
        if obj is not None and written:
            session.expire(obj, written)


def _refuse_delete(mapper: Mapper[Any]) -> InvalidRequestError:
    name, key = mapper.class_.__name__, _key_names(mapper)[0]
    return InvalidRequestError(
        f"Refusing an ORM delete({name}) executed with a list of parameter sets (a delete by "
        "primary key): SQLAlchemy does not support it, and on a soft-delete model it would "
        "soft-delete the rows the keys name without the tenant and deleted_at criteria. Fix: "
        f"session.execute(delete({name}).where({name}.{key}.in_(keys)))."
    )


def by_primary_key(
    state: ORMExecuteState, scope: TenantScope | None, *, live_only: bool, soft_delete: bool
) -> Result[Any] | None:
    """Run an ORM UPDATE by primary key with the criteria (``None``: the hooks go on as usual).

    A DELETE by primary key that would be a soft delete (``soft_delete``) is refused.
    """
    if not private.runs_by_primary_key(state):
        return None
    mapper = state.bind_mapper
    if mapper is None:
        return None
    if state.is_delete:
        if soft_delete:
            raise _refuse_delete(mapper)
        return None  # SQLAlchemy refuses it
    criteria = _criteria(mapper, scope, live_only=live_only)
    if not criteria:
        return None
    statement = state.statement.where(*criteria)  # type: ignore[attr-defined]
    if len(mapper.tables) > 1:
        state.parameters = _with_key_parameters(mapper, state.parameters)  # type: ignore[arg-type]
    if not private.synchronizes_by_evaluating(state):
        return state.invoke_statement(statement=statement)
    result = state.invoke_statement(
        statement=statement, execution_options={"synchronize_session": False}
    )
    _expire_written(state.session, mapper, state.parameters)  # type: ignore[arg-type]
    return result
