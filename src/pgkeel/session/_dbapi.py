"""Fixed statements sent straight to the driver, and what is known about the connected role."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection

_ROLE_BYPASSES_RLS_DBAPI: Final = (
    "SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
)
BYPASS_RECORD: Final = "pgkeel_role_bypasses_rls"
"""``Connection.info`` key: (role, whether it bypasses row-level security) in this transaction.

Forgotten when the transaction ends, with the tenant record: ``SET ROLE`` may change the role
between transactions of one pooled connection."""
_log = logging.getLogger("pgkeel.session")


@contextmanager
def _driver_cursor(connection: Connection) -> Iterator[Any]:
    """A cursor of the DBAPI connection under ``connection``: its statements fire no events."""
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None  # noqa: S101  # a connection that executes has one
    cursor = dbapi_connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def run_fixed(connection: Connection, statement: str) -> None:
    """Run a fixed statement (no parameters, no result) on the DBAPI connection: no events."""
    with _driver_cursor(connection) as cursor:
        cursor.execute(statement)


def fetch_one(connection: Connection, statement: str, *params: str) -> tuple[object, ...]:
    """Run a fixed statement on the DBAPI connection: no statement events, one round trip."""
    with _driver_cursor(connection) as cursor:
        cursor.execute(statement, params or None)
        row = cursor.fetchone()
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
