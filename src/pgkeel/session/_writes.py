"""Write checks at flush: soft deletes, the tenant of new rows, no write to other tenants' rows."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect

from pgkeel.errors import CrossTenantWriteError, TenantNotSetError
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
    from sqlalchemy.orm import Session, UOWTransaction


def _describe(obj: object) -> str:
    ident = obj.__dict__.get("id")
    return f"{type(obj).__name__}(id={ident})" if ident is not None else type(obj).__name__


def _same_tenant(value: object, scope: uuid.UUID) -> bool:
    if isinstance(value, uuid.UUID):
        return value == scope
    return isinstance(value, str) and value == str(scope)


def _cross_tenant(obj: object, value: object, scope: uuid.UUID, verb: str) -> CrossTenantWriteError:
    owner = "a tenant not visible here" if value is UNKNOWN else f"tenant {value}"
    return CrossTenantWriteError(
        f"Refusing to {verb} {_describe(obj)}: it belongs to {owner}, and the current "
        f"tenant_context is {scope}. Fix: do this inside `tenant_context(<its tenant>)`, or in a "
        "system job under `tenant_context(ALL_TENANTS)`."
    )


def _check_new(obj: TenantMixin, scope: TenantScope | None) -> None:
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
        raise _cross_tenant(obj, tenant, scope, "insert")


def _check_existing(obj: TenantMixin, scope: TenantScope | None, verb: str) -> None:
    if scope is ALL_TENANTS:
        return
    scope = require_tenant(f"Changing {_describe(obj)}") if scope is None else scope
    assert isinstance(scope, uuid.UUID)  # noqa: S101  # narrowed: not None, not ALL_TENANTS
    history = _tenant_history(obj)
    values = [*history] or [loaded_value(obj, TENANT_COLUMN)]
    for value in values:
        if not _same_tenant(value, scope):
            raise _cross_tenant(obj, value, scope, verb)


def _tenant_history(obj: object) -> tuple[Any, ...]:
    history = inspect(obj).attrs[TENANT_COLUMN].history
    return (*history.added, *history.unchanged, *history.deleted)


def _soft_delete_pending(session: Session) -> None:
    """``session.delete(obj)`` on a soft-delete model marks the row instead of deleting it."""
    for obj in list(session.deleted):
        if isinstance(obj, SoftDeleteMixin) and not is_marked_for_hard_delete(session, obj):
            session.add(obj)
            obj.soft_delete()


def on_before_flush(session: Session, _context: UOWTransaction, _instances: object) -> None:
    """``before_flush``: soft deletes, then the tenant of every new, changed or deleted row."""
    _soft_delete_pending(session)
    scope = current_tenant()
    for obj in session.new:
        if isinstance(obj, TenantMixin):
            _check_new(obj, scope)
    for obj in session.dirty:
        if isinstance(obj, TenantMixin) and session.is_modified(obj, include_collections=False):
            _check_existing(obj, scope, "update")
    for obj in session.deleted:
        if isinstance(obj, TenantMixin):
            _check_existing(obj, scope, "delete")


def on_after_flush(session: Session, _context: UOWTransaction) -> None:
    """``after_flush_postexec``: the ``hard_delete`` marks of this flush are spent."""
    session.info.pop(HARD_DELETES_KEY, None)
