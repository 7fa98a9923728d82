"""Installation: pgkeel's hooks on a session factory, a ``Session`` subclass or an engine."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Final, TypeGuard, overload

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from pgkeel.session import _sqlalchemy_private as private
from pgkeel.session._autocommit import rollback_cleared
from pgkeel.session._execute_hook import on_execute, on_execute_no_params, on_executemany
from pgkeel.session._reads import guarded_identity_lookup, guarded_merge, on_orm_execute
from pgkeel.session._refusals import translate_error
from pgkeel.session._session_class import PgkeelSession, guarded_bulk_save
from pgkeel.session._tenant_setting import begin_tenant
from pgkeel.session._writes import on_after_flush, on_before_flush

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
    from sqlalchemy.orm import SessionTransaction

_engine_lock = threading.Lock()
_HOOKED: Final = "_pgkeel_session_hooks"
"""Marks a ``Session`` class that has pgkeel's listeners."""
_HOOKED_DIALECT: Final = "_pgkeel_statement_hooks"
"""Marks a dialect that has pgkeel's statement hooks.

An engine and its ``execution_options()`` copies share one dialect, so they share its hooks.
The mark is an attribute of the dialect (it dies with it), read on every session transaction's
begin: cheaper than a lookup in a weak set, which makes a weak reference per call.
"""


@overload
def install_engine_hooks(engine: Engine) -> Engine: ...
@overload
def install_engine_hooks(engine: AsyncEngine) -> AsyncEngine: ...


def install_engine_hooks(engine: Engine | AsyncEngine) -> Engine | AsyncEngine:
    """Keep ``app.tenant_id`` right on ``engine``'s connections and translate RLS refusals.

    Installed by ``create_sessionmaker`` and by the first transaction of a hooked session; call it
    yourself to give Core connections (``engine.connect()``) the current tenant too. An
    ``AsyncEngine`` gets the hooks on its ``sync_engine`` (events are synchronous). The hooks
    are the dialect's events (``_execute_hook``), so they hold for every engine that shares
    ``engine``'s dialect (its ``execution_options()`` copies).
    """
    if _is_async_engine(engine):
        install_engine_hooks(engine.sync_engine)
        return engine
    assert isinstance(engine, Engine)  # noqa: S101  # the other kind returned above
    _hook_dialect(engine)
    return engine


def _has_hooks(engine: Engine) -> bool:
    return bool(getattr(engine.dialect, _HOOKED_DIALECT, False))


def _hook_dialect(engine: Engine) -> None:
    """Listen on ``engine``'s dialect (once per dialect, whichever thread gets there first)."""
    if _has_hooks(engine):
        return
    with _engine_lock:
        if _has_hooks(engine):
            return
        private.listen_first(engine, "do_execute", on_execute)
        private.listen_first(engine, "do_execute_no_params", on_execute_no_params)
        private.listen_first(engine, "do_executemany", on_executemany)
        event.listen(engine, "handle_error", rollback_cleared)
        event.listen(engine, "handle_error", translate_error)
        setattr(engine.dialect, _HOOKED_DIALECT, True)


def _on_after_begin(_session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    """``after_begin``: the engine's hooks, then the tenant for this transaction only.

    A session's connections are always synchronous ones (an ``AsyncSession`` runs a ``Session``),
    so the engine is hooked here without ``install_engine_hooks``' check for an ``AsyncEngine``.
    """
    _hook_dialect(connection.engine)
    begin_tenant(connection)


_SESSION_HOOKS: Final = (
    ("do_orm_execute", on_orm_execute),
    ("after_begin", _on_after_begin),
    ("before_flush", on_before_flush),
    ("after_flush_postexec", on_after_flush),
)


def _listen(session_class: type[Session]) -> None:
    """Listen on ``session_class`` once (a class that inherits the hooks already has them)."""
    if any(_HOOKED in vars(klass) for klass in session_class.__mro__):
        return
    for name, hook in _SESSION_HOOKS:
        event.listen(session_class, name, hook)
    setattr(session_class, _HOOKED, True)


def _guarded(session_class: type[Session]) -> type[Session]:
    """A subclass of ``session_class`` with the identity-map guard (itself if it has it)."""
    if issubclass(session_class, PgkeelSession):
        return session_class
    return type(session_class.__name__, (PgkeelSession, session_class), {})


def _asyncio() -> Any:  # noqa: ANN401  # the module, when the application imported it
    """``sqlalchemy.ext.asyncio`` if the application uses it (it needs greenlet), else None."""
    return sys.modules.get("sqlalchemy.ext.asyncio")


def _is_async_factory(target: object) -> bool:
    module = _asyncio()
    return module is not None and isinstance(target, module.async_sessionmaker)


def _is_async_engine(engine: object) -> TypeGuard[AsyncEngine]:
    module = _asyncio()
    return module is not None and isinstance(engine, module.AsyncEngine)


def _hook_async_factory(target: async_sessionmaker[Any]) -> None:
    sync_class = _guarded(target.kw.get("sync_session_class") or Session)
    target.kw["sync_session_class"] = sync_class
    _listen(sync_class)
    bind = target.kw.get("bind")
    if bind is not None and _is_async_engine(bind):
        install_engine_hooks(bind.sync_engine)


def _hook_factory(target: sessionmaker[Any]) -> None:
    target.class_ = _guarded(target.class_)
    _listen(target.class_)
    bind = target.kw.get("bind")
    if isinstance(bind, Engine):
        install_engine_hooks(bind)


@overload
def install_session_hooks(target: sessionmaker[Any]) -> sessionmaker[Any]: ...
@overload
def install_session_hooks(target: async_sessionmaker[Any]) -> async_sessionmaker[Any]: ...
@overload
def install_session_hooks(target: type[Session]) -> type[Session]: ...


def install_session_hooks(
    target: sessionmaker[Any] | async_sessionmaker[Any] | type[Session],
) -> sessionmaker[Any] | async_sessionmaker[Any] | type[Session]:
    """Give the sessions of a factory (or of your own ``Session`` subclass) pgkeel's hooks.

    Accepts a ``sessionmaker``, an ``async_sessionmaker`` or a ``Session`` subclass of your own;
    never ``sqlalchemy.orm.Session`` itself, which would change every session of the process.
    """
    if _is_async_factory(target):
        _hook_async_factory(target)  # type: ignore[arg-type]
    elif isinstance(target, sessionmaker):
        _hook_factory(target)
    elif isinstance(target, type) and issubclass(target, Session) and target is not Session:
        if not issubclass(target, PgkeelSession):
            setattr(target, "_identity_lookup", guarded_identity_lookup)  # noqa: B010
            setattr(target, "_bulk_save_mappings", guarded_bulk_save)  # noqa: B010
            setattr(target, "merge", guarded_merge)  # noqa: B010
        _listen(target)
    else:
        raise TypeError(
            f"install_session_hooks({target!r}): expected a sessionmaker, an async_sessionmaker "
            "or your own Session subclass (never sqlalchemy.orm.Session itself: its hooks would "
            "apply to every session in the process). Fix: pass your sessionmaker, or use "
            "pgkeel.create_sessionmaker(engine)."
        )
    return target


@overload
def create_sessionmaker(engine: Engine, **kw: Any) -> sessionmaker[Session]: ...  # noqa: ANN401
@overload
def create_sessionmaker(
    engine: AsyncEngine,
    **kw: Any,  # noqa: ANN401
) -> async_sessionmaker[AsyncSession]: ...


def create_sessionmaker(
    engine: Engine | AsyncEngine,
    **kw: Any,  # every sessionmaker option
) -> sessionmaker[Session] | async_sessionmaker[AsyncSession]:
    """A ``sessionmaker`` (``async_sessionmaker`` for an ``AsyncEngine``) with pgkeel's hooks.

    ``kw`` are ``sessionmaker`` options (``expire_on_commit``, ``class_``, ...). Behind PgBouncer
    in ``pool_mode = transaction``, create the engine so that nothing outlives a transaction:
    ``create_engine(url, connect_args={"prepare_threshold": None})``: psycopg prepares a
    statement on its server connection after 5 runs, and the next transaction may get another
    server connection, without it (PgBouncer 1.21+ with ``max_prepared_statements`` lifts this).
    pgkeel itself is safe under transaction pooling: the tenant is passed with
    ``set_config(..., true)`` inside each transaction, never with a session-level ``SET``, and a
    value another client left on the server connection never reaches a hooked transaction.
    Keep tenant work in transactions: in a tenant context, the ``AUTOCOMMIT`` isolation level is
    refused (``set_config(..., true)`` could not reach the statement).
    """
    if _is_async_engine(engine):
        module = _asyncio()
        kw.setdefault("sync_session_class", PgkeelSession)
        async_factory: async_sessionmaker[AsyncSession] = module.async_sessionmaker(engine, **kw)
        _hook_async_factory(async_factory)
        return async_factory
    assert isinstance(engine, Engine)  # noqa: S101  # the other kind returned above
    kw.setdefault("class_", PgkeelSession)
    factory: sessionmaker[Session] = sessionmaker(bind=engine, **kw)
    _hook_factory(factory)
    return factory
