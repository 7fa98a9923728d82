"""The tenant in the database: ``app.tenant_id`` set per transaction, kept right on every statement.

``set_config('app.tenant_id', <bound value>, true)`` runs at the start of every transaction of a
hooked session, and again before a statement whenever the tenant changed inside one; never a
session-level ``SET``. ``Connection.info[TENANT_RECORD]`` remembers what is in force.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import text

from pgkeel.errors import TenantNotSetError
from pgkeel.session._reads import UNKNOWN
from pgkeel.tenancy import ALL_TENANTS, current_tenant, setting_value

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_SET_TENANT_DBAPI: Final = "SELECT set_config('app.tenant_id', %s, true)"
_ROLE_BYPASSES_RLS = text(
    "SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
)
TENANT_RECORD: Final = "pgkeel_tenant_setting"
"""``Connection.info`` key: the ``app.tenant_id`` value in force in the current transaction."""
_TRANSACTION_CONTROL: Final = ("ROLLBACK", "RELEASE", "SAVEPOINT", "COMMIT", "BEGIN", "END")
_log = logging.getLogger("pgkeel.session")


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


def begin_tenant(connection: Connection) -> None:
    """A transaction began on ``connection``: pass the tenant to PostgreSQL for it only."""
    scope = current_tenant()
    if scope is ALL_TENANTS:
        _require_bypass(connection)
    _set_tenant(connection, setting_value(scope))


def sync_tenant(
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


def forget_tenant(connection: Connection, *_args: object) -> None:
    """The transaction ended: its ``set_config(..., true)`` is gone."""
    connection.info.pop(TENANT_RECORD, None)


def unknown_tenant(connection: Connection, *_args: object) -> None:
    """A rolled back savepoint may have restored an earlier value: set it again before use."""
    connection.info[TENANT_RECORD] = UNKNOWN


def forget_on_reset(dbapi_connection: object, connection_record: Any, reset_state: object) -> None:  # noqa: ANN401, ARG001
    """The pool reset a connection (rolled back): no transaction-local setting survives."""
    connection_record.info.pop(TENANT_RECORD, None)
