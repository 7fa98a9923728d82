"""Write checks at flush: soft deletes, the tenant of new rows, no write to other tenants' rows."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, select, tuple_
from sqlalchemy.orm import ONETOMANY, with_parent
from sqlalchemy.orm.exc import ObjectDeletedError

from pgkeel.errors import CrossTenantWriteError, TenantNotSetError
from pgkeel.session._cascade import forget_soft_deleted
from pgkeel.session._dbapi import role_bypasses_rls
from pgkeel.session._reads import UNKNOWN, loaded_value
from pgkeel.softdelete import HARD_DELETES_KEY, SoftDeleteMixin, is_marked_for_hard_delete
from pgkeel.tenancy import (
    ALL_TENANTS,
    TENANT_COLUMN,
    TenantMixin,
    TenantScope,
    current_tenant,
    require_tenant,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Mapper, Session, UOWTransaction


_SOFT_DELETED_MAPPERS = "pgkeel_soft_deleted_mappers"
"""``Session.info`` key: the mappers of the objects the current flush soft-deletes."""


def _describe(obj: object) -> str:
    ident = obj.__dict__.get("id")
    return f"{type(obj).__name__}(id={ident})" if ident is not None else type(obj).__name__


def _same_tenant(value: object, scope: uuid.UUID) -> bool:
    if isinstance(value, uuid.UUID):
        return value == scope
    return isinstance(value, str) and value == str(scope)


def cross_tenant(obj: object, value: object, scope: uuid.UUID, verb: str) -> CrossTenantWriteError:
    owner = "a tenant not visible here" if value is UNKNOWN else f"tenant {value}"
    return CrossTenantWriteError(
        f"Refusing to {verb} {_describe(obj)}: it belongs to {owner}, and the current "
        f"tenant_context is {scope}. Fix: do this inside `tenant_context(<its tenant>)`, or in a "
        "system job under `tenant_context(ALL_TENANTS)`."
    )


def check_new(obj: TenantMixin, scope: TenantScope | None) -> None:
    tenant = obj.__dict__.get(TENANT_COLUMN)
    scope = require_tenant(f"Saving a new {type(obj).__name__}") if scope is None else scope
    if scope is ALL_TENANTS:
        if tenant is None:
            raise TenantNotSetError(
                f"Saving a new {type(obj).__name__} under ALL_TENANTS: pgkeel cannot guess its "
                "tenant. Fix: set tenant_id explicitly, or create it inside tenant_context(t)."
            )
        return
    assert isinstance(scope, uuid.UUID)  # noqa: S101  # narrowed: not None, not ALL_TENANTS
    if tenant is None:
        obj.tenant_id = scope
    elif not _same_tenant(tenant, scope):
        raise cross_tenant(obj, tenant, scope, "insert")


def check_existing(obj: TenantMixin, scope: TenantScope | None, verb: str) -> None:
    if scope is ALL_TENANTS:
        return
    scope = require_tenant(f"Changing {_describe(obj)}") if scope is None else scope
    assert isinstance(scope, uuid.UUID)  # noqa: S101  # narrowed: not None, not ALL_TENANTS
    history = _tenant_history(obj)
    values = [*history] or [loaded_value(obj, TENANT_COLUMN)]
    for value in values:
        if not _same_tenant(value, scope):
            raise cross_tenant(obj, value, scope, verb)


def _tenant_history(obj: object) -> tuple[Any, ...]:
    history = inspect(obj).attrs[TENANT_COLUMN].history
    return (*history.added, *history.unchanged, *history.deleted)


def _passive_children(session: Session, obj: object) -> list[object]:
    """Live children behind ``passive_deletes`` delete cascades, which SQLAlchemy leaves unloaded.

    ``passive_deletes=True`` leaves deleting them to ``ON DELETE CASCADE``; a soft delete deletes
    nothing, so they are loaded here (through the filters) and soft-deleted with their parent.
    """
    children: list[object] = []
    for relationship in inspect(obj).mapper.relationships:
        cascade = relationship.cascade.delete and relationship.passive_deletes
        if not cascade or relationship.direction is not ONETOMANY:
            continue
        if not issubclass(relationship.mapper.class_, SoftDeleteMixin):
            continue
        attribute = getattr(type(obj), relationship.key)
        query = select(relationship.mapper).where(with_parent(obj, attribute))
        children.extend(session.scalars(query))
    return children


def _mark_deleted(obj: SoftDeleteMixin) -> None:
    """``obj.soft_delete()``; a row not visible here (another tenant's) is a refused write."""
    try:
        obj.soft_delete()
    except ObjectDeletedError as error:
        scope = current_tenant()
        if not isinstance(obj, TenantMixin) or not isinstance(scope, uuid.UUID):
            raise
        raise cross_tenant(obj, UNKNOWN, scope, "delete") from error


def _soft_delete_pending(session: Session) -> None:
    """``session.delete(obj)`` on a soft-delete model marks the row instead of deleting it.

    Children of a ``passive_deletes`` cascade are soft-deleted too, level by level.
    """
    done: set[int] = set()
    while pending := [
        obj
        for obj in session.deleted
        if isinstance(obj, SoftDeleteMixin)
        and id(obj) not in done
        and not is_marked_for_hard_delete(session, obj)
    ]:
        for obj in pending:
            done.add(id(obj))
            session.add(obj)
            _mark_deleted(obj)
            session.info.setdefault(_SOFT_DELETED_MAPPERS, set()).add(inspect(obj).mapper)
            for child in _passive_children(session, obj):
                session.delete(child)


def rows_of_other_tenants(
    session: Session, mapper: Mapper[Any], identities: list[tuple[Any, ...]], scope: uuid.UUID
) -> list[tuple[Any, ...]]:
    """The primary keys among ``identities`` whose row belongs to another tenant than ``scope``."""
    tenant = mapper.columns[TENANT_COLUMN]
    keys = [tenant.table.c[column.name] for column in mapper.primary_key]
    statement = select(*keys).where(tuple_(*keys).in_(identities), tenant.is_distinct_from(scope))
    connection = session.connection(bind_arguments={"mapper": mapper})
    return [tuple(row) for row in connection.execute(statement)]


def _stored_elsewhere(session: Session, objects: list[Any], scope: uuid.UUID) -> list[Any]:
    """The objects whose row in the database belongs to another tenant than ``scope``."""
    by_mapper: dict[Any, list[Any]] = {}
    for obj in objects:
        by_mapper.setdefault(inspect(obj).mapper, []).append(obj)
    found: list[Any] = []
    for mapper, group in by_mapper.items():
        identities = {inspect(obj).identity: obj for obj in group}
        elsewhere = rows_of_other_tenants(session, mapper, list(identities), scope)
        found.extend(identities[identity] for identity in elsewhere)
    return found


def check_stored_tenants(session: Session, objects: list[Any], scope: uuid.UUID) -> None:
    """On a role that bypasses row-level security, the rows a flush changes must be the tenant's.

    An object's ``tenant_id`` says which tenant it claims; the row its primary key names may
    belong to another (a detached object built or merged with another tenant's id). Row-level
    security makes such an UPDATE or DELETE touch nothing on the runtime role; on a bypassing
    role one query per model checks the stored tenants before the flush writes.
    """
    persistent = [obj for obj in objects if inspect(obj).identity is not None]
    if not persistent:
        return
    if not role_bypasses_rls(session.connection())[1]:
        return
    for obj in _stored_elsewhere(session, persistent, scope):
        raise CrossTenantWriteError(
            f"Refusing to change {_describe(obj)}: its row in the database belongs to another "
            f"tenant, although the object says tenant_id={scope} (a detached object built or "
            "merged with another tenant's id). Fix: load the object inside its own "
            "tenant_context before changing it; never build a persistent object by hand."
        )


def _soft_deleted_by_value(session: Session) -> None:
    """``obj.soft_delete()`` (or ``deleted_at`` set by hand): remembered like ``session.delete``.

    So that the relationships loaded before the flush that hold the row are expired after it
    (``on_after_flush``), whichever way the row was soft-deleted.
    """
    for obj in session.dirty:
        if isinstance(obj, SoftDeleteMixin) and obj.__dict__.get("deleted_at") is not None:
            state = inspect(obj)
            if state.attrs.deleted_at.history.added:
                session.info.setdefault(_SOFT_DELETED_MAPPERS, set()).add(state.mapper)


def on_before_flush(session: Session, _context: UOWTransaction, _instances: object) -> None:
    """``before_flush``: soft deletes, then the tenant of every new, changed or deleted row."""
    _soft_delete_pending(session)
    _soft_deleted_by_value(session)
    scope = current_tenant()
    for obj in session.new:
        if isinstance(obj, TenantMixin):
            check_new(obj, scope)
    changed = []
    for obj in session.dirty:
        if isinstance(obj, TenantMixin) and session.is_modified(obj, include_collections=False):
            check_existing(obj, scope, "update")
            changed.append(obj)
    for obj in session.deleted:
        if isinstance(obj, TenantMixin):
            check_existing(obj, scope, "delete")
            changed.append(obj)
    if changed and isinstance(scope, uuid.UUID):
        check_stored_tenants(session, changed, scope)


def on_after_flush(session: Session, _context: UOWTransaction) -> None:
    """``after_flush_postexec``: spend this flush's marks, forget the rows it soft-deleted.

    The ``hard_delete`` marks are spent; relationships loaded before the flush that may hold a
    row it soft-deleted are expired.
    """
    session.info.pop(HARD_DELETES_KEY, None)
    forget_soft_deleted(session, session.info.pop(_SOFT_DELETED_MAPPERS, ()))
