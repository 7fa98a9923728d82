"""The legacy bulk methods checked like a flush: the tenant of every row they insert or update.

``Session.bulk_save_objects``, ``bulk_insert_mappings`` and ``bulk_update_mappings`` write rows
without a flush, so none of the flush checks run. All three pass through
``Session._bulk_save_mappings``; ``checked_bulk_save`` runs there first: new rows get the current
tenant (or are refused if they name another one), updated rows must name no other tenant, and on
a role that bypasses row-level security the rows their primary keys name must be the tenant's.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect

from pgkeel.errors import CrossTenantWriteError, TenantNotSetError
from pgkeel.session._dbapi import role_bypasses_rls
from pgkeel.session._writes import rows_of_other_tenants
from pgkeel.tenancy import ALL_TENANTS, TENANT_COLUMN, TenantMixin, TenantScope, require_tenant

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.orm import Mapper, Session
    from sqlalchemy.orm.state import InstanceState


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


def _check_updates(
    session: Session, mapper: Mapper[Any], mappings: list[Any], *, isstates: bool
) -> None:
    scope = require_tenant(f"A bulk update of {mapper.class_.__name__}")
    if scope is ALL_TENANTS:
        return
    assert isinstance(scope, uuid.UUID)  # noqa: S101  # narrowed: not ALL_TENANTS
    for row in _values(mappings, isstates=isstates):
        value = row.get(TENANT_COLUMN)
        if value is not None and not _same(value, scope):
            _refuse(mapper, value, scope, "update")
    if not role_bypasses_rls(session.connection(bind_arguments={"mapper": mapper}))[1]:
        return  # row-level security makes rows of other tenants match nothing
    identities = [_identity(mapper, mapping, isstates=isstates) for mapping in mappings]
    for identity in rows_of_other_tenants(session, mapper, identities, scope):
        raise CrossTenantWriteError(
            f"Refusing a bulk update of {mapper.class_.__name__}(id={identity[0]}): its row in "
            f"the database belongs to another tenant than tenant_context({scope}). Fix: update "
            "another tenant's rows inside its own tenant_context."
        )


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
    if not rows or not issubclass(mapper.class_, TenantMixin):
        return rows
    if isupdate:
        _check_updates(session, mapper, rows, isstates=isstates)
    else:
        scope = require_tenant(f"A bulk insert of {mapper.class_.__name__}")
        _check_inserts(mapper, _values(rows, isstates=isstates), scope)
    return rows
