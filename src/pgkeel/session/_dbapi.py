"""Fixed statements sent straight to the driver, and what is known about the connected role."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_ROLE_BYPASSES_RLS_DBAPI: Final = (
    "SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
)
BYPASS_RECORD: Final = "pgkeel_role_bypasses_rls"
"""``Connection.info`` key: (role, whether it bypasses row-level security) in this transaction.

Forgotten when the transaction ends, with the tenant record: ``SET ROLE`` may change the role
between transactions of one pooled connection."""
_log = logging.getLogger("pgkeel.session")


def fetch_one(connection: Connection, statement: str, *params: str) -> tuple[object, ...]:
    """Run a fixed statement on the DBAPI connection: no statement events, one round trip."""
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None  # noqa: S101  # a connection that executes has one
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement, params or None)
        row = cursor.fetchone()
    finally:
        cursor.close()
    _log.debug("%s -- %r", statement, params[0] if params else None)
    return tuple(row or ())


def role_bypasses_rls(connection: Connection) -> tuple[str, bool]:
    """The current role and whether it bypasses row-level security (asked once per transaction)."""
    info = connection.info
    if BYPASS_RECORD not in info:
        role, bypasses = fetch_one(connection, _ROLE_BYPASSES_RLS_DBAPI)
        info[BYPASS_RECORD] = (str(role), bool(bypasses))
    known: tuple[str, bool] = info[BYPASS_RECORD]
    return known
