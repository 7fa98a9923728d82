"""``BEGIN`` and the tenant setting in one round trip, ahead of a transaction's first statement.

psycopg opens a transaction by sending ``BEGIN`` as a round trip of its own before the first
statement; ``set_config('app.tenant_id', $1, true)`` sent as a query would add a second one.
While the driver connection has not begun its transaction, pgkeel sends both itself instead,
pipelined (libpq's pipeline mode: two extended-protocol queries and one Sync), reads both results
and raises the first error before anything else is sent. psycopg then finds a transaction in
progress and sends the statement as usual, so a hooked transaction makes the round trips that
the same transaction makes without pgkeel.

The ``BEGIN`` is the one psycopg would send, with the connection's isolation level, read-only
and deferrable settings. Where this does not apply (a transaction already in progress, psycopg's
own pipeline open, a libpq without pipeline mode, a driver other than psycopg 3),
``begin_with_tenant`` returns False and the caller sends ``set_config`` as a query of its own.

Measured alternatives: queuing ``set_config`` and the statement in psycopg's ``pipeline()`` also
saves a round trip, but psycopg still sends ``BEGIN`` as a round trip of its own in pipeline mode,
and its pipeline bookkeeping cost more CPU than the round trip saved on a local connection
(docs/performance.md, isolation section).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg import generators, pq
from sqlalchemy.util import await_

if TYPE_CHECKING:
    from psycopg.abc import PQGen
    from sqlalchemy.engine import Connection

SET_TENANT_DBAPI: Final = "SELECT set_config('app.tenant_id', %s, true)"
"""The tenant setting as a driver query (``%s``: the value, a bound parameter)."""
_SET_TENANT_LIBPQ: Final = b"SELECT set_config('app.tenant_id', $1, true)"
_RESULTS: Final = 3
"""Results of the exchange: ``BEGIN``'s, ``set_config``'s and the Sync's."""
_IDLE: Final = pq.TransactionStatus.IDLE
_PIPELINE_OFF: Final = pq.PipelineStatus.OFF
_FAILED: Final = (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.NONFATAL_ERROR)
_AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]
_log = logging.getLogger("pgkeel.session")


def _can_begin(driver: _AnyConnection) -> bool:
    """Not begun yet, not in AUTOCOMMIT, no pipeline of psycopg's own, libpq with pipelines."""
    pgconn = driver.pgconn
    return (
        pgconn.transaction_status == _IDLE
        and not driver.autocommit
        and pgconn.pipeline_status == _PIPELINE_OFF
        and psycopg.Pipeline.is_supported()
    )


def _begin_command(driver: _AnyConnection) -> bytes:
    """The ``BEGIN`` psycopg sends for ``driver``'s transaction characteristics."""
    words = ["BEGIN"]
    if driver.isolation_level is not None:
        level = psycopg.IsolationLevel(driver.isolation_level)
        words.append(f"ISOLATION LEVEL {level.name.replace('_', ' ')}")
    if driver.read_only is not None:
        words.append("READ ONLY" if driver.read_only else "READ WRITE")
    if driver.deferrable is not None:
        words.append("DEFERRABLE" if driver.deferrable else "NOT DEFERRABLE")
    return " ".join(words).encode()


def _exchange(pgconn: pq.abc.PGconn, begin: bytes, value: bytes) -> PQGen[list[pq.abc.PGresult]]:
    """Send ``BEGIN`` and ``set_config`` with one Sync; every result, the Sync's last."""
    pgconn.enter_pipeline_mode()
    results: list[pq.abc.PGresult] = []
    try:
        pgconn.send_query_params(begin, None)
        pgconn.send_query_params(_SET_TENANT_LIBPQ, [value])
        pgconn.pipeline_sync()
        yield from generators.send(pgconn)
        for _ in range(_RESULTS):
            results.extend((yield from generators.fetch_many(pgconn)))
    finally:
        if pgconn.status != pq.ConnStatus.BAD:
            pgconn.exit_pipeline_mode()
    return results


def _raise_first_error(driver: _AnyConnection, results: list[pq.abc.PGresult]) -> None:
    for result in results:
        if result.status in _FAILED:
            raise psycopg.errors.error_from_result(result, encoding=driver.info.encoding)


def _sync_begin(driver: psycopg.Connection[Any], value: bytes) -> list[pq.abc.PGresult] | None:
    with driver.lock:
        if not _can_begin(driver):
            return None
        return driver.wait(_exchange(driver.pgconn, _begin_command(driver), value))


async def _async_begin(
    driver: psycopg.AsyncConnection[Any], value: bytes
) -> list[pq.abc.PGresult] | None:
    async with driver.lock:
        if not _can_begin(driver):
            return None
        return await driver.wait(_exchange(driver.pgconn, _begin_command(driver), value))


def begin_with_tenant(connection: Connection, value: str) -> bool:
    """``BEGIN`` + ``set_config('app.tenant_id', value, true)`` in one round trip, if it applies.

    False (nothing sent) when the transaction has begun already or the driver cannot pipeline;
    raises PostgreSQL's error if either failed (the transaction is then aborted).
    """
    driver = connection.connection.driver_connection
    encoded = value.encode()
    if isinstance(driver, psycopg.Connection):
        results = _sync_begin(driver, encoded)
    elif isinstance(driver, psycopg.AsyncConnection):
        results = await_(_async_begin(driver, encoded))
    else:
        return False
    if results is None:
        return False
    _log.debug("%s; %s -- %r", _begin_command(driver).decode(), SET_TENANT_DBAPI, value)
    _raise_first_error(driver, results)
    return True
