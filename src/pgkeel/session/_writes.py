"""Write checks at flush: soft deletes, the tenant of new rows, no write to other tenants' rows."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import event, inspect, select, tuple_
from sqlalchemy.orm import ONETOMANY, PassiveFlag, with_parent
from sqlalchemy.orm.attributes import get_history, instance_state
from sqlalchemy.orm.exc import ObjectDeletedError

from pgkeel.errors import CrossTenantWriteError, TenantNotSetError
from pgkeel.session._cascade import forget_soft_deleted, soft_delete_orphans
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
    from collections.abc import Iterable, Iterator

    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import InstanceState, Mapper, Session, UOWTransaction


_SOFT_DELETED_MAPPERS = "pgkeel_soft_deleted_mappers"
"""``Session.info`` key: the mappers of the objects the current flush soft-deletes."""
_CHECKED_ROWS: Final = "pgkeel_checked_rows"
"""``Session.info`` key: the states ``before_flush`` checked; present only during a hooked flush."""
_UNLOADED: Final = ("dynamic", "write_only")
"""Loader strategies whose collections keep their changes without being in the object's dict."""
_watching_rows: Final = threading.Event()
_watch_lock: Final = threading.Lock()


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
    connection = session.connection(bind_arguments={"mapper": mapper})
    return _other_tenant_rows(connection, mapper, identities, scope)


def _other_tenant_rows(
    connection: Connection, mapper: Mapper[Any], identities: list[tuple[Any, ...]], scope: uuid.UUID
) -> list[tuple[Any, ...]]:
    tenant = mapper.columns[TENANT_COLUMN]
    keys = [tenant.table.c[column.name] for column in mapper.primary_key]
    statement = select(*keys).where(tuple_(*keys).in_(identities), tenant.is_distinct_from(scope))
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
        raise _stored_elsewhere_error(obj, scope)


def _stored_elsewhere_error(obj: object, scope: uuid.UUID) -> CrossTenantWriteError:
    return CrossTenantWriteError(
        f"Refusing to change {_describe(obj)}: its row in the database belongs to another "
        f"tenant, although the object says tenant_id={scope} (a detached object built or "
        "merged with another tenant's id). Fix: load the object inside its own "
        "tenant_context before changing it; never build a persistent object by hand."
    )


def _collection_children(objects: Iterable[object]) -> Iterator[TenantMixin]:
    """Persistent tenant objects added to or removed from one-to-many collections of ``objects``.

    The flush sets or clears their foreign key (or deletes them as orphans), yet nothing changed
    them before it when the relationship has no ``back_populates``.
    """
    for obj in objects:
        state = instance_state(obj)
        for relationship in state.mapper.relationships:
            if relationship.direction is not ONETOMANY or relationship.viewonly:
                continue
            untouched = relationship.key not in state.dict and relationship.lazy not in _UNLOADED
            if untouched or not issubclass(relationship.mapper.class_, TenantMixin):
                continue
            history = get_history(obj, relationship.key, PassiveFlag.PASSIVE_NO_INITIALIZE)
            for child in (*history.added, *history.deleted):
                if isinstance(child, TenantMixin) and instance_state(child).key is not None:
                    yield child


def _rows_to_check(session: Session) -> dict[InstanceState[Any], tuple[TenantMixin, str]]:
    """Each persistent tenant object whose row the flush writes, with the verb for errors."""
    dirty = list(session.dirty)
    rows: dict[InstanceState[Any], tuple[TenantMixin, str]] = {}
    for obj in dirty:
        if isinstance(obj, TenantMixin) and session.is_modified(obj, include_collections=False):
            rows[inspect(obj)] = (obj, "update")
    for child in _collection_children([*session.new, *dirty]):
        rows.setdefault(inspect(child), (child, "update"))
    for obj in session.deleted:
        if isinstance(obj, TenantMixin):
            rows[inspect(obj)] = (obj, "delete")
    return rows


def _check_row_alone(connection: Connection, mapper: Mapper[Any], obj: Any, verb: str) -> None:  # noqa: ANN401
    """The checks of ``before_flush`` for one row it did not see, on the flush's connection.

    Reads nothing through the session (the flush is under way): the ``tenant_id`` in memory,
    and on a role that bypasses row-level security the stored tenant, with one query.
    """
    scope = current_tenant()
    if scope is ALL_TENANTS:
        return
    scope = require_tenant(f"Changing {_describe(obj)}") if scope is None else scope
    assert isinstance(scope, uuid.UUID)  # noqa: S101  # narrowed: not None, not ALL_TENANTS
    for value in _tenant_history(obj):
        if not _same_tenant(value, scope):
            raise cross_tenant(obj, value, scope, verb)
    if not role_bypasses_rls(connection)[1]:
        return  # row-level security makes a row of another tenant match nothing
    if _other_tenant_rows(connection, mapper, [inspect(obj).identity], scope):
        raise _stored_elsewhere_error(obj, scope)


def _unchecked(obj: object, *, writes_columns: bool) -> bool:
    """Whether a hooked flush writes ``obj``'s row without ``before_flush`` having checked it."""
    state = inspect(obj)
    session = state.session
    checked = None if session is None else session.info.get(_CHECKED_ROWS)
    if session is None or checked is None or state in checked:
        return False
    return not writes_columns or session.is_modified(obj, include_collections=False)


def _on_update(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    """``before_update`` of tenant models: a row no object change or collection change named."""
    if _unchecked(target, writes_columns=True):
        _check_row_alone(connection, mapper, target, "update")


def _on_delete(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    """``before_delete`` of tenant models: a row deleted without ``session.delete``."""
    if _unchecked(target, writes_columns=False):
        _check_row_alone(connection, mapper, target, "delete")


def _watch_written_rows() -> None:
    """Listen, once per process, to the UPDATEs and DELETEs of every tenant model's rows.

    The last guard behind ``before_flush``: a row the flush writes that ``before_flush`` did not
    check (the children whose foreign key a deleted parent clears, rows changed by another
    ``before_flush`` listener) is checked alone as it is written. Sessions without pgkeel's
    hooks never have ``_CHECKED_ROWS``, so the listeners leave their flushes alone.
    """
    if _watching_rows.is_set():
        return
    with _watch_lock:
        if not _watching_rows.is_set():
            event.listen(TenantMixin, "before_update", _on_update, propagate=True)
            event.listen(TenantMixin, "before_delete", _on_delete, propagate=True)
            _watching_rows.set()


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
    """``before_flush``: soft deletes, then the tenant of every row the flush inserts or writes.

    Written rows are those of changed and deleted objects, and of the children added to or
    removed from a one-to-many collection; a row written otherwise is checked as it is written.
    Soft-delete orphans of a ``delete-orphan`` cascade are soft-deleted like ``session.delete``.
    """
    soft_delete_orphans(session)
    _soft_delete_pending(session)
    _soft_deleted_by_value(session)
    _watch_written_rows()
    scope = current_tenant()
    for obj in session.new:
        if isinstance(obj, TenantMixin):
            check_new(obj, scope)
    rows = _rows_to_check(session)
    for obj, verb in rows.values():
        check_existing(obj, scope, verb)
    if rows and isinstance(scope, uuid.UUID):
        check_stored_tenants(session, [obj for obj, _verb in rows.values()], scope)
    session.info[_CHECKED_ROWS] = set(rows)


def on_after_flush(session: Session, _context: UOWTransaction) -> None:
    """``after_flush_postexec``: spend this flush's marks, forget the rows it soft-deleted.

    The ``hard_delete`` marks are spent; relationships loaded before the flush that may hold a
    row it soft-deleted are expired.
    """
    session.info.pop(HARD_DELETES_KEY, None)
    session.info.pop(_CHECKED_ROWS, None)
    forget_soft_deleted(session, session.info.pop(_SOFT_DELETED_MAPPERS, ()))
