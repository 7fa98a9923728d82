"""The tenant in the database: ``app.tenant_id`` set per transaction, kept right on every statement.

``set_config('app.tenant_id', <tenant id>, true)`` runs at the start of every transaction of a
hooked session or Core connection (with its ``BEGIN``, in one query: ``_begin``), empty when
no tenant is set, so a value left on a pooled connection by a session-level ``SET`` never reaches
the transaction; it runs again before a statement whenever the tenant changed inside one.
``Connection.info[TENANT_RECORD]`` remembers what is in force. ``AUTOCOMMIT`` statements cannot
carry a transaction-local value: in a tenant context they are refused, outside one each runs in a
transaction that cleared the value first (``_autocommit``).
``ALL_TENANTS`` is refused on a role that row-level security binds, on every path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pgkeel.errors import TenantNotSetError
from pgkeel.session._autocommit import begin_cleared
from pgkeel.session._begin import SET_TENANT_DBAPI, begin_with_tenant
from pgkeel.session._dbapi import BYPASS_RECORD, fetch_one, role_bypasses_rls
from pgkeel.session._reads import UNKNOWN
from pgkeel.tenancy import ALL_TENANTS, TenantScope, current_tenant, setting_value

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TENANT_RECORD: Final = "pgkeel_tenant_setting"
"""``Connection.info`` key: the tenant scope in force in the current transaction.

A tenant id, ``ALL_TENANTS``, None (no tenant: the setting is empty) or ``UNKNOWN`` (a rolled back
savepoint may have restored an earlier value); absent until the transaction's setting is sent.
"""
_TRANSACTION_CONTROL: Final = ("ROLLBACK", "RELEASE", "SAVEPOINT", "COMMIT", "BEGIN", "END")


def _require_bypass(connection: Connection) -> None:
    """``ALL_TENANTS`` only works on a role that bypasses row-level security: say so if not."""
    role, bypasses = role_bypasses_rls(connection)
    if not bypasses:
        raise TenantNotSetError(
            f"tenant_context(ALL_TENANTS) on role {role!r}, which is subject to row-level "
            "security: every tenant table would look empty. ALL_TENANTS turns off pgkeel's ORM "
            "filter only; the database still needs a role that bypasses row-level security. "
            "Fix: run system jobs with their own engine, connected as a role created WITH "
            "BYPASSRLS (see docs/multi-tenancy.md), or use tenant_context(tenant_id) per tenant."
        )


def _is_autocommit(connection: Connection) -> bool:
    dbapi_connection = connection.connection.dbapi_connection
    return bool(getattr(dbapi_connection, "autocommit", False))


def _refuse_autocommit(scope: TenantScope) -> None:
    raise TenantNotSetError(
        f"A statement in tenant_context({scope}) on a connection in AUTOCOMMIT mode: every "
        "statement is its own transaction there, so the tenant that pgkeel passes with "
        "set_config(..., true) would not reach it, and a value left on the connection by a "
        "session-level SET could. Fix: run tenant work in a transaction (drop "
        "isolation_level='AUTOCOMMIT' from this engine or connection; engine.begin() or a "
        "Session)."
    )


def _set_tenant(connection: Connection, scope: TenantScope | None) -> None:
    """``set_config('app.tenant_id', <scope's value>, true)``, remembered for the transaction.

    At the start of a transaction it goes with ``BEGIN``, in the round trip psycopg would make
    for ``BEGIN`` alone; inside a transaction it is a query of its own.
    """
    if scope is ALL_TENANTS:
        _require_bypass(connection)
    value = setting_value(scope)
    if not begin_with_tenant(connection, value):
        fetch_one(connection, SET_TENANT_DBAPI, value)
    connection.info[TENANT_RECORD] = scope


def begin_tenant(connection: Connection) -> None:
    """A transaction began on ``connection``: pass the tenant to PostgreSQL for it only."""
    scope = current_tenant()
    if _is_autocommit(connection):
        _autocommit_statement(connection, scope)
        return
    _set_tenant(connection, scope)


def _autocommit_statement(connection: Connection, scope: TenantScope | None) -> None:
    """In AUTOCOMMIT mode: refuse a tenant; ALL_TENANTS needs a role that bypasses RLS."""
    if scope is not None and scope is not ALL_TENANTS:
        _refuse_autocommit(scope)
    if scope is ALL_TENANTS:
        _require_bypass(connection)


def sync_tenant(
    connection: Connection,
    _cursor: object,
    statement: str,
    _parameters: object,
    _context: object,
    _executemany: bool,  # noqa: FBT001  # the event's signature
) -> None:
    """``before_cursor_execute``: set the tenant at a transaction's first statement or on change."""
    scope = current_tenant()
    if connection.info.get(TENANT_RECORD, UNKNOWN) == scope:
        return
    if statement.lstrip()[:10].upper().startswith(_TRANSACTION_CONTROL):
        return  # e.g. ROLLBACK TO SAVEPOINT in a failed transaction: set it on the next statement
    if _is_autocommit(connection):
        _autocommit_statement(connection, scope)
        begin_cleared(connection, statement)
        return
    _set_tenant(connection, scope)


def forget_tenant(connection: Connection, *_args: object) -> None:
    """The transaction ended: its ``set_config(..., true)`` is gone, the role may change."""
    info = connection.info
    info.pop(TENANT_RECORD, None)
    info.pop(BYPASS_RECORD, None)


def unknown_tenant(connection: Connection, *_args: object) -> None:
    """A rolled back savepoint may have restored an earlier value: set it again before use."""
    connection.info[TENANT_RECORD] = UNKNOWN


def forget_on_reset(dbapi_connection: object, connection_record: Any, reset_state: object) -> None:  # noqa: ANN401, ARG001
    """The pool reset a connection (rolled back): no transaction-local setting survives."""
    connection_record.info.pop(TENANT_RECORD, None)
    connection_record.info.pop(BYPASS_RECORD, None)
