"""Fixed statements sent straight to the driver, and what is known about the connected role."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from psycopg import pq

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection

_ROLE_BYPASSES_RLS_DBAPI: Final = (
    "SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
)
BYPASS_RECORD: Final = "pgkeel_role_bypasses_rls"
"""``Connection.info`` key: (transaction, role, whether it bypasses row-level security).

Valid in that transaction only (``current_transaction``): ``SET ROLE`` may change the role
between transactions of one pooled connection."""
_IDLE: Final = pq.TransactionStatus.IDLE
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


def _driver_in_transaction(driver: Any) -> bool:  # noqa: ANN401  # any DBAPI connection
    """The transaction status (psycopg: read from libpq, its ``info`` makes objects per call)."""
    pgconn = getattr(driver, "pgconn", None)
    if pgconn is not None:
        return bool(pgconn.transaction_status != _IDLE)
    status = getattr(getattr(driver, "info", None), "transaction_status", _IDLE)
    return bool(status != _IDLE)


def driver_of(connection: Connection) -> Any:  # noqa: ANN401  # any driver connection
    """The driver's connection under ``connection`` (psycopg's own, under the async dialect too).

    For the synchronous psycopg dialect it is the DBAPI connection itself, read without the
    three property calls of ``driver_connection`` (this runs on every statement).
    """
    fairy = connection.connection
    dbapi_connection = fairy.dbapi_connection
    if hasattr(dbapi_connection, "pgconn"):
        return dbapi_connection
    return fairy.driver_connection


def driver_in_transaction(connection: Connection) -> bool:
    """Whether the driver connection has begun a transaction (its next statement will not)."""
    return _driver_in_transaction(driver_of(connection))


def current_transaction(connection: Connection) -> object | None:
    """What a record made for the transaction in progress is kept with; None between them.

    SQLAlchemy's transaction object while the driver's transaction is open (or, in
    ``AUTOCOMMIT``, where the driver has none, while SQLAlchemy's is): a new object for every
    transaction of ``connection``, and None once the driver's transaction has ended, however it
    ended (commit, rollback, or a driver-level commit that SQLAlchemy did not see). So a record
    made in another transaction never matches the one in progress. Records hold the object
    itself, not its ``id()``, which the next transaction's object could reuse.
    """
    driver = driver_of(connection)
    if getattr(driver, "autocommit", False) or _driver_in_transaction(driver):
        return connection.get_transaction()
    return None


def role_bypasses_rls(connection: Connection) -> tuple[str, bool]:
    """The current role and whether it bypasses row-level security (asked once per transaction)."""
    info = connection.info
    known = info.get(BYPASS_RECORD)
    transaction = current_transaction(connection)
    if known is None or transaction is None or known[0] is not transaction:
        role, bypasses = fetch_one(connection, _ROLE_BYPASSES_RLS_DBAPI)
        known = info[BYPASS_RECORD] = (current_transaction(connection), str(role), bool(bypasses))
    return known[1], known[2]
