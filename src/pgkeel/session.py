"""Session hooks: ORM filters on every load path, checks at flush, the tenant per transaction.

``create_sessionmaker(engine)`` (or ``install_session_hooks(factory)``) gives sessions that:

- add ``deleted_at IS NULL`` and ``tenant_id = <current tenant>`` to every ORM SELECT, UPDATE and
  DELETE with ``with_loader_criteria`` (joins, aliases, relationship loads, EXISTS from
  ``has()``/``any()``, subqueries and CTEs included), and hide such rows when ``Session.get`` or a
  many-to-one lazy load finds them in the identity map;
- turn ``session.delete(obj)`` and ORM bulk ``delete()`` on soft-delete models into soft deletes;
- fill in ``tenant_id`` on new objects and refuse, at flush, writes to another tenant's rows;
- run ``SELECT set_config('app.tenant_id', <bound value>, true)`` at the start of every
  transaction (and again if the tenant changes inside one), never a session-level ``SET``;
- turn PostgreSQL's row-level security refusals into ``CrossTenantWriteError`` /
  ``TenantNotSetError``.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Final, TypeGuard, TypeVar, overload

import psycopg.errors
from sqlalchemy import Engine, event, false, func, inspect, text, update
from sqlalchemy.orm import Mapper, Session, sessionmaker, with_loader_criteria
from sqlalchemy.orm.base import LoaderCallableStatus, PassiveFlag
from sqlalchemy.orm.exc import ObjectDeletedError
from sqlalchemy.orm.interfaces import UserDefinedOption
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util import EMPTY_DICT

from pgkeel.errors import CrossTenantWriteError, TenantNotSetError
from pgkeel.softdelete import (
    HARD_DELETE,
    HARD_DELETES_KEY,
    INCLUDE_DELETED,
    SoftDeleteMixin,
    is_marked_for_hard_delete,
    is_soft_delete_table,
)
from pgkeel.tenancy import (
    ALL_TENANTS,
    TENANT_COLUMN,
    TenantMixin,
    TenantScope,
    current_tenant,
    is_tenant_table,
    require_tenant,
    setting_value,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection, ExceptionContext, Result
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
    from sqlalchemy.orm import ORMExecuteState, SessionTransaction, UOWTransaction
    from sqlalchemy.orm._typing import OrmExecuteOptionsParameter
    from sqlalchemy.orm.interfaces import ORMOption
    from sqlalchemy.orm.session import _BindArguments
    from sqlalchemy.orm.state import InstanceState
    from sqlalchemy.sql.base import Executable

_O = TypeVar("_O")
_SET_TENANT_DBAPI: Final = "SELECT set_config('app.tenant_id', %s, true)"
_ROLE_BYPASSES_RLS = text(
    "SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
)
TENANT_RECORD: Final = "pgkeel_tenant_setting"
"""``Connection.info`` key: the ``app.tenant_id`` value in force in the current transaction."""
_UNKNOWN: Final = "\x00unknown"
_TRANSACTION_CONTROL: Final = ("ROLLBACK", "RELEASE", "SAVEPOINT", "COMMIT", "BEGIN", "END")
_engine_lock = threading.Lock()
_hooked_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_log = logging.getLogger(__name__)


class IncludeDeleted(UserDefinedOption):
    """Carries ``include_deleted=True`` from a query to the lazy loads of the objects it loaded."""

    propagate_to_loaders = True


_CARRY_INCLUDE_DELETED = IncludeDeleted()
_LIVE_ONLY = with_loader_criteria(
    SoftDeleteMixin,
    lambda cls: cls.deleted_at.is_(None),
    include_aliases=True,
)
_NO_TENANT_ROWS = with_loader_criteria(TenantMixin, lambda _cls: false(), include_aliases=True)


@functools.lru_cache(maxsize=4096)
def _tenant_rows(tenant: uuid.UUID) -> ORMOption:
    """Criteria for the rows of ``tenant`` (the id is a bound parameter: one cached SQL for all).

    Options are immutable, so one per recent tenant is kept rather than rebuilt per statement.
    """
    return with_loader_criteria(
        TenantMixin, lambda cls: cls.tenant_id == tenant, include_aliases=True
    )


# --- reads -----------------------------------------------------------------------------------


def _is_tenant_mapper(mapper: Mapper[Any]) -> bool:
    return issubclass(mapper.class_, TenantMixin)


def _option_mappers(statement: Executable) -> set[Mapper[Any]]:
    """Mappers named by loader options (``joinedload(A.bs)`` names B), best effort."""
    found: set[Mapper[Any]] = set()
    for option in getattr(statement, "_with_options", ()):
        for element in getattr(option, "context", ()):
            for token in getattr(getattr(element, "path", None), "path", ()):
                mapper = getattr(token, "mapper", None)
                if isinstance(mapper, Mapper):
                    found.add(mapper)
    return found


def _with_joined_defaults(mappers: Iterable[Mapper[Any]]) -> set[Mapper[Any]]:
    """``mappers`` and every mapper they reach through ``lazy="joined"`` relationships."""
    todo, seen = list(mappers), set()
    while todo:
        mapper = todo.pop()
        if mapper in seen:
            continue
        seen.add(mapper)
        todo.extend(rel.mapper for rel in mapper.relationships if rel.lazy == "joined")
    return seen


def _tables(statement: Executable) -> list[Any]:
    """Every table a statement reads or writes: joins, subqueries, EXISTS, column references."""
    found = find_tables(
        statement,  # type: ignore[arg-type]
        check_columns=True,
        include_aliases=True,
        include_joins=True,
        include_selects=True,
        include_crud=True,
    )
    return [table for table in found if table is not None and hasattr(table, "info")]


def _touches_tenant_rows(state: ORMExecuteState) -> bool:
    """Whether a statement reads or writes a tenant table anywhere (joins, EXISTS, options)."""
    mappers = {*state.all_mappers, *_option_mappers(state.statement)}
    if state.bind_mapper is not None:
        mappers.add(state.bind_mapper)
    if any(_is_tenant_mapper(mapper) for mapper in _with_joined_defaults(mappers)):
        return True
    return any(is_tenant_table(table) for table in _tables(state.statement))


def _is_filtered_core_select(statement: Executable) -> bool:
    """A Core ``select()`` (no ORM entity) that mentions a tenant or soft-delete table."""
    if not getattr(statement, "is_select", False):
        return False
    return any(is_tenant_table(t) or is_soft_delete_table(t) for t in _tables(statement))


def _tenant_options(state: ORMExecuteState) -> list[ORMOption]:
    scope = current_tenant()
    if scope is ALL_TENANTS:
        return []
    if isinstance(scope, uuid.UUID):
        return [_tenant_rows(scope)]
    if _touches_tenant_rows(state):
        require_tenant("An ORM statement on a tenant model")
    return [_NO_TENANT_ROWS]


def _includes_deleted(state: ORMExecuteState) -> bool:
    if state.execution_options.get(INCLUDE_DELETED):
        return True
    return any(isinstance(option, IncludeDeleted) for option in state.user_defined_options)


def _soft_delete_options(state: ORMExecuteState) -> list[ORMOption]:
    if _includes_deleted(state):
        return [_CARRY_INCLUDE_DELETED] if state.is_select else []
    if state.is_column_load:
        return []  # refreshing an object the caller already holds
    return [_LIVE_ONLY]


def _soft_deletes_rows(state: ORMExecuteState) -> bool:
    mapper = state.bind_mapper
    return (
        mapper is not None
        and issubclass(mapper.class_, SoftDeleteMixin)
        and not state.execution_options.get(HARD_DELETE)
    )


def _soft_delete_rows(state: ORMExecuteState, options: list[ORMOption]) -> Result[Any]:
    """Run an ORM bulk ``delete()`` on a soft-delete model as ``UPDATE ... SET deleted_at``."""
    delete = state.statement
    mapper = state.bind_mapper
    assert mapper is not None  # noqa: S101  # checked by _soft_deletes_rows
    column = mapper.class_.deleted_at
    statement = update(mapper).values({column: func.coalesce(column, func.now())})
    where = getattr(delete, "whereclause", None)
    if where is not None:
        statement = statement.where(where)
    returning = getattr(delete, "_returning", ())
    if returning:
        statement = statement.returning(*returning)
    statement = statement.options(*getattr(delete, "_with_options", ()), *options)
    statement = statement.execution_options(**delete.get_execution_options())
    return state.invoke_statement(statement=statement)


def _on_orm_execute(state: ORMExecuteState) -> Result[Any] | None:
    """``do_orm_execute``: add the tenant and soft-delete criteria to every ORM statement.

    Core ``select()``s built from mapped attributes (``select(exists().where(Invoice.id == x))``)
    get them too; ``text()`` and statements on ``Table`` objects rely on row-level security.
    """
    if not (state.is_orm_statement or _is_filtered_core_select(state.statement)):
        return None
    if state.is_insert:
        if current_tenant() is None and _touches_tenant_rows(state):
            require_tenant("An ORM INSERT into a tenant model")
        return None
    if not (state.is_select or state.is_update or state.is_delete):
        return None
    options = [*_tenant_options(state), *_soft_delete_options(state)]
    if state.is_delete and _soft_deletes_rows(state):
        return _soft_delete_rows(state, options)
    if not state.is_from_statement:
        state.statement = state.statement.options(*options)
    return None


def _loaded_value(obj: object, name: str) -> Any:  # noqa: ANN401  # any column value
    """An attribute's value, loading it if needed; ``_UNKNOWN`` when the row is not visible."""
    if name in obj.__dict__:
        return obj.__dict__[name]
    try:
        return getattr(obj, name)
    except ObjectDeletedError:
        return _UNKNOWN


def _visible(obj: object, execution_options: Any) -> bool:  # noqa: ANN401  # a mapping
    """Whether an object found in the identity map may be returned in the current context."""
    if isinstance(obj, TenantMixin):
        scope = require_tenant(f"Loading {type(obj).__name__}")
        if scope is not ALL_TENANTS and _loaded_value(obj, TENANT_COLUMN) != scope:
            return False
    if isinstance(obj, SoftDeleteMixin) and not execution_options.get(INCLUDE_DELETED):
        return _loaded_value(obj, "deleted_at") is None
    return True


class PgkeelSession(Session):
    """A ``Session`` whose identity-map hits (``get``, many-to-one lazy loads) obey the filters.

    The filters of the session hooks apply to SQL; an object already in the identity map is
    returned by ``Session.get`` and by many-to-one lazy loads without SQL. This subclass hides
    such an object when the current tenant or its ``deleted_at`` would have filtered it out.
    """

    def _identity_lookup(  # noqa: PLR0913, PLR0917  # SQLAlchemy's signature
        self,
        mapper: Mapper[_O],
        primary_key_identity: Any | tuple[Any, ...],  # noqa: ANN401  # SQLAlchemy's signature
        identity_token: Any = None,  # noqa: ANN401
        passive: PassiveFlag = PassiveFlag.PASSIVE_OFF,
        lazy_loaded_from: InstanceState[Any] | None = None,
        execution_options: OrmExecuteOptionsParameter = EMPTY_DICT,
        bind_arguments: _BindArguments | None = None,
    ) -> _O | LoaderCallableStatus | None:
        found = super()._identity_lookup(
            mapper,
            primary_key_identity,
            identity_token=identity_token,
            passive=passive,
            lazy_loaded_from=lazy_loaded_from,
            execution_options=execution_options,
            bind_arguments=bind_arguments,
        )
        if found is None or isinstance(found, LoaderCallableStatus):
            return found
        if not passive & PassiveFlag.SQL_OK or _visible(found, execution_options):
            return found
        return None


# --- writes ----------------------------------------------------------------------------------


def _describe(obj: object) -> str:
    ident = obj.__dict__.get("id")
    return f"{type(obj).__name__}(id={ident})" if ident is not None else type(obj).__name__


def _same_tenant(value: object, scope: uuid.UUID) -> bool:
    if isinstance(value, uuid.UUID):
        return value == scope
    return isinstance(value, str) and value == str(scope)


def _cross_tenant(obj: object, value: object, scope: uuid.UUID, verb: str) -> CrossTenantWriteError:
    owner = "a tenant not visible here" if value is _UNKNOWN else f"tenant {value}"
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
    values = [*history] or [_loaded_value(obj, TENANT_COLUMN)]
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


def _on_before_flush(session: Session, _context: UOWTransaction, _instances: object) -> None:
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


def _on_after_flush(session: Session, _context: UOWTransaction) -> None:
    session.info.pop(HARD_DELETES_KEY, None)


# --- the tenant in the database ---------------------------------------------------------------


def _require_bypass(connection: Connection) -> None:
    """``ALL_TENANTS`` only works on a role that bypasses row-level security: say so if not."""
    role, bypasses = connection.execute(_ROLE_BYPASSES_RLS).one()
    if not bypasses:
        raise TenantNotSetError(
            f"tenant_context(ALL_TENANTS) on role {role!r}, which is subject to row-level "
            "security: every tenant table would look empty. ALL_TENANTS turns off pgkeel's ORM "
            "filter only; the database still needs a role that bypasses row-level security. "
            "Fix: run system jobs with their own engine, connected as a role created WITH "
            "BYPASSRLS (see docs/multi-tenancy.md), or use tenant_context(tenant_id) per tenant."
        )


def _set_tenant(connection: Connection, value: str) -> None:
    """``set_config('app.tenant_id', value, true)`` on the connection's DBAPI connection.

    It goes straight to the driver: one round trip, no statement events (the statement is fixed
    and its one parameter is bound), logged on the ``pgkeel.session`` logger at DEBUG.
    """
    connection.info[TENANT_RECORD] = value
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None  # noqa: S101  # a connection that executes has one
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_SET_TENANT_DBAPI, (value,))
    finally:
        cursor.close()
    _log.debug("%s -- %r", _SET_TENANT_DBAPI, value)


def _on_after_begin(_session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    """``after_begin``: pass the tenant to PostgreSQL for this transaction only."""
    install_engine_hooks(connection.engine)
    scope = current_tenant()
    if scope is ALL_TENANTS:
        _require_bypass(connection)
    _set_tenant(connection, setting_value(scope))


def _sync_tenant(
    connection: Connection,
    _cursor: object,
    _statement: str,
    _parameters: object,
    _context: object,
    _executemany: bool,  # noqa: FBT001  # the event's signature
) -> None:
    """``before_cursor_execute``: the tenant changed inside a transaction -> set it again."""
    wanted = setting_value(current_tenant())
    recorded = connection.info.get(TENANT_RECORD)
    if recorded == wanted or (recorded is None and not wanted):
        return
    if _statement.lstrip()[:10].upper().startswith(_TRANSACTION_CONTROL):
        return  # e.g. ROLLBACK TO SAVEPOINT in a failed transaction: set it on the next statement
    _set_tenant(connection, wanted)


def _forget_tenant(connection: Connection, *_args: object) -> None:
    """The transaction ended: its ``set_config(..., true)`` is gone."""
    connection.info.pop(TENANT_RECORD, None)


def _unknown_tenant(connection: Connection, *_args: object) -> None:
    """A rolled back savepoint may have restored an earlier value: set it again before use."""
    connection.info[TENANT_RECORD] = _UNKNOWN


def _forget_on_reset(dbapi_connection: object, connection_record: Any, reset_state: object) -> None:  # noqa: ANN401, ARG001
    """The pool reset a connection (rolled back): no transaction-local setting survives."""
    connection_record.info.pop(TENANT_RECORD, None)


def _is_rls_refusal(error: BaseException) -> bool:
    return isinstance(error, psycopg.errors.InsufficientPrivilege) and "row-level security" in str(
        error
    )


def _is_missing_tenant(error: BaseException) -> bool:
    return (
        isinstance(error, psycopg.errors.NotNullViolation)
        and error.diag.column_name == TENANT_COLUMN
    )


def _translate_error(context: ExceptionContext) -> BaseException | None:
    """``handle_error``: the database refused a row for tenant reasons -> pgkeel's error."""
    error = context.original_exception
    if not (_is_rls_refusal(error) or _is_missing_tenant(error)):
        return None
    table = getattr(getattr(error, "diag", None), "table_name", None) or "a tenant table"
    scope = current_tenant()
    if isinstance(scope, uuid.UUID):
        return CrossTenantWriteError(
            f"PostgreSQL refused a row of {table!r}: row-level security accepts only rows of "
            f"the current tenant {scope}, and this row names another tenant_id. Fix: write "
            "rows of another tenant inside its own tenant_context."
        )
    return TenantNotSetError(
        f"PostgreSQL refused a row of {table!r}: no tenant is set for this transaction "
        f"({'ALL_TENANTS on a role subject to row-level security' if scope else 'no context'}), "
        "and row-level security accepts no row then. Fix: write inside "
        "`with pgkeel.tenant_context(tenant_id):`."
    )


@overload
def install_engine_hooks(engine: Engine) -> Engine: ...
@overload
def install_engine_hooks(engine: AsyncEngine) -> AsyncEngine: ...


def install_engine_hooks(engine: Engine | AsyncEngine) -> Engine | AsyncEngine:
    """Keep ``app.tenant_id`` right on ``engine``'s connections and translate RLS refusals.

    Installed by ``create_sessionmaker`` and by the first transaction of a hooked session; call it
    yourself to give Core connections (``engine.connect()``) the current tenant too. An
    ``AsyncEngine`` gets the hooks on its ``sync_engine`` (events are synchronous).
    """
    if _is_async_engine(engine):
        install_engine_hooks(engine.sync_engine)
        return engine
    assert isinstance(engine, Engine)  # noqa: S101  # the other kind returned above
    if engine in _hooked_engines:
        return engine
    with _engine_lock:
        if engine in _hooked_engines:
            return engine
        _hooked_engines.add(engine)
        event.listen(engine, "before_cursor_execute", _sync_tenant)
        event.listen(engine, "begin", _forget_tenant)
        event.listen(engine, "commit", _forget_tenant)
        event.listen(engine, "rollback", _forget_tenant)
        event.listen(engine, "rollback_savepoint", _unknown_tenant)
        event.listen(engine, "reset", _forget_on_reset)
        event.listen(engine, "handle_error", _translate_error)
    return engine


# --- installation ----------------------------------------------------------------------------

_SESSION_HOOKS: Final = (
    ("do_orm_execute", _on_orm_execute),
    ("after_begin", _on_after_begin),
    ("before_flush", _on_before_flush),
    ("after_flush_postexec", _on_after_flush),
)


_HOOKED: Final = "_pgkeel_session_hooks"


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
            setattr(target, "_identity_lookup", PgkeelSession._identity_lookup)  # noqa: B010
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
    ``set_config(..., true)`` inside each transaction, never with a session-level ``SET``.
    Keep tenant work in transactions (not the ``AUTOCOMMIT`` isolation level): outside one, the
    setting would not reach the next statement, and every tenant row would look absent.
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
