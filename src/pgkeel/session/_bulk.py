"""The legacy bulk methods checked like a flush: the tenant of every row they insert or update.

``Session.bulk_save_objects``, ``bulk_insert_mappings`` and ``bulk_update_mappings`` write rows
without a flush, so none of the flush checks run. All three pass through
``Session._bulk_save_mappings``; ``checked_bulk_save`` runs there first: new rows get the current
tenant (or are refused if they name another one), updated rows must name no other tenant, and on
a role that bypasses row-level security the rows their primary keys name must be the tenant's.
An update never writes a soft-deleted row, as an ORM ``update()`` by primary key does not: one
query finds the rows the primary keys name that are deleted (or, on a role that bypasses
row-level security, another tenant's), and the write is refused before any row is written. An
object of ``bulk_save_objects`` loaded as deleted (``include_deleted=True``) is written, as a
flush writes it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import false, inspect, select, tuple_
from sqlalchemy.orm.exc import StaleDataError

from pgkeel.errors import CrossTenantWriteError, TenantNotSetError
from pgkeel.session._dbapi import role_bypasses_rls
from pgkeel.softdelete import SoftDeleteMixin
from pgkeel.tenancy import (
    ALL_TENANTS,
    TENANT_COLUMN,
    TenantMixin,
    TenantScope,
    current_tenant,
    require_tenant,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Mapper, Session
    from sqlalchemy.orm.state import InstanceState
    from sqlalchemy.sql.elements import ColumnElement


def _values(mappings: list[Any], *, isstates: bool) -> list[dict[str, Any]]:
    """The attribute dictionaries written: an object's ``__dict__`` or the mapping itself."""
    return [mapping.obj().__dict__ if isstates else mapping for mapping in mappings]


def _same(value: object, scope: uuid.UUID) -> bool:
    return value == scope or (isinstance(value, str) and value == str(scope))


def _refuse(mapper: Mapper[Any], value: object, scope: uuid.UUID, verb: str) -> None:
    raise CrossTenantWriteError(
        f"Refusing a bulk {verb} of {mapper.class_.__name__} that writes tenant_id={value} "
        f"inside tenant_context({scope}). Fix: leave tenant_id out (the current tenant is "
        "filled in), write another tenant's rows inside its own tenant_context, or in a system "
        "job under tenant_context(ALL_TENANTS)."
    )


def _check_inserts(mapper: Mapper[Any], rows: list[dict[str, Any]], scope: TenantScope) -> None:
    for row in rows:
        value = row.get(TENANT_COLUMN)
        if value is None and scope is ALL_TENANTS:
            raise TenantNotSetError(
                f"A bulk insert of {mapper.class_.__name__} under ALL_TENANTS without tenant_id: "
                "pgkeel cannot guess the tenant. Fix: give each row its tenant_id, or insert "
                "inside tenant_context(t)."
            )
        if value is None:
            row[TENANT_COLUMN] = scope
        elif isinstance(scope, uuid.UUID) and not _same(value, scope):
            _refuse(mapper, value, scope, "insert")


def _identity(mapper: Mapper[Any], mapping: Any, *, isstates: bool) -> tuple[Any, ...]:  # noqa: ANN401
    if isstates:
        return tuple(mapping.key[1])
    return tuple(mapping.get(mapper.get_property_by_column(c).key) for c in mapper.primary_key)


def _loaded_as_deleted(mapping: Any, *, isstates: bool) -> bool:  # noqa: ANN401
    """Whether an object of ``bulk_save_objects`` was loaded as a deleted row (on purpose)."""
    if not isstates:
        return False
    history = mapping.attrs.deleted_at.history
    return any(value is not None for value in (*history.unchanged, *history.deleted))


def _stored_refusals(
    connection: Connection,
    mapper: Mapper[Any],
    identities: list[tuple[Any, ...]],
    scope: uuid.UUID | None,
) -> list[tuple[tuple[Any, ...], bool]]:
    """The rows among ``identities`` that are soft-deleted or (``scope``) another tenant's.

    Each as (primary key, whether it is another tenant's); one query for both checks.
    """
    table = mapper.columns[TENANT_COLUMN if scope is not None else "deleted_at"].table
    keys = [table.c[column.name] for column in mapper.primary_key]
    elsewhere: ColumnElement[bool] = false()
    if scope is not None:
        elsewhere = table.c[TENANT_COLUMN].is_distinct_from(scope)
    deleted: ColumnElement[bool] = false()
    if issubclass(mapper.class_, SoftDeleteMixin):
        deleted = table.c["deleted_at"].is_not(None)
    statement = select(*keys, elsewhere).where(tuple_(*keys).in_(identities), elsewhere | deleted)
    return [(tuple(row[:-1]), bool(row[-1])) for row in connection.execute(statement)]


def _refuse_deleted(mapper: Mapper[Any], identities: list[tuple[Any, ...]]) -> NoReturn:
    name = mapper.class_.__name__
    ids = ", ".join(str(identity[0]) for identity in identities)
    raise StaleDataError(
        f"Refusing a bulk update of {name}: the rows with id {ids} are soft-deleted, and an "
        f"update does not write deleted rows (an ORM update({name}) leaves them as they are). "
        "Fix: leave them out; to change deleted rows on purpose, run "
        f"session.execute(update({name}).execution_options(include_deleted=True), rows), or "
        "load them with include_deleted=True and change the objects (obj.restore() restores one)."
    )


def _check_stored_rows(
    session: Session, mapper: Mapper[Any], mappings: list[Any], *, isstates: bool
) -> None:
    """The rows the primary keys name: none deleted, none of another tenant (bypassing roles)."""
    scope = current_tenant()
    connection = session.connection(bind_arguments={"mapper": mapper})
    tenant = None
    if isinstance(scope, uuid.UUID) and issubclass(mapper.class_, TenantMixin):
        tenant = scope if role_bypasses_rls(connection)[1] else None
    if tenant is None and not issubclass(mapper.class_, SoftDeleteMixin):
        return  # row-level security makes rows of other tenants match nothing
    identities = {
        _identity(mapper, mapping, isstates=isstates): mapping
        for mapping in mappings
        if not _loaded_as_deleted(mapping, isstates=isstates)
    }
    if not identities:
        return
    refused = _stored_refusals(connection, mapper, list(identities), tenant)
    for identity, elsewhere in refused:
        if elsewhere:
            raise CrossTenantWriteError(
                f"Refusing a bulk update of {mapper.class_.__name__}(id={identity[0]}): its row "
                f"in the database belongs to another tenant than tenant_context({scope}). Fix: "
                "update another tenant's rows inside its own tenant_context."
            )
    if refused:
        _refuse_deleted(mapper, [identity for identity, _elsewhere in refused])


def _check_updates(
    session: Session, mapper: Mapper[Any], mappings: list[Any], *, isstates: bool
) -> None:
    if issubclass(mapper.class_, TenantMixin):
        scope = require_tenant(f"A bulk update of {mapper.class_.__name__}")
        if isinstance(scope, uuid.UUID):
            for row in _values(mappings, isstates=isstates):
                value = row.get(TENANT_COLUMN)
                if value is not None and not _same(value, scope):
                    _refuse(mapper, value, scope, "update")
    _check_stored_rows(session, mapper, mappings, isstates=isstates)


def checked_bulk_save(  # SQLAlchemy's signature
    session: Session,
    mapper: Any,  # noqa: ANN401  # a mapper or a mapped class
    mappings: Iterable[InstanceState[Any]] | Iterable[dict[str, Any]],
    *,
    isupdate: bool,
    isstates: bool,
    **_options: object,
) -> list[Any]:
    """Check the rows of a bulk write of a tenant model; returns them as a list (read once)."""
    rows = list(mappings)
    mapper = inspect(mapper)
    if not rows or not issubclass(mapper.class_, (TenantMixin, SoftDeleteMixin)):
        return rows
    if isupdate:
        _check_updates(session, mapper, rows, isstates=isstates)
    elif issubclass(mapper.class_, TenantMixin):
        scope = require_tenant(f"A bulk insert of {mapper.class_.__name__}")
        _check_inserts(mapper, _values(rows, isstates=isstates), scope)
    return rows
