"""``BEGIN`` and the tenant setting in one round trip, ahead of a transaction's first statement.

psycopg opens a transaction by sending ``BEGIN`` as a round trip of its own before the first
statement; ``set_config('app.tenant_id', $1, true)`` sent as a query would add a second one.
While the driver connection has not begun its transaction, pgkeel sends both itself instead, as
one simple query (``BEGIN ...; SELECT set_config('app.tenant_id', '<value>', true)``, the value
quoted by libpq), reads both results and raises the first error before anything else is sent.
psycopg then finds a transaction in progress and sends the statement as usual, so a hooked
transaction makes the round trips that the same transaction makes without pgkeel.

The ``BEGIN`` is the one psycopg would send, with the connection's isolation level, read-only
and deferrable settings. Where this does not apply (a transaction already in progress, psycopg's
own pipeline open, a driver other than psycopg 3), ``begin_with_tenant`` returns False and the
caller sends ``set_config`` as a query of its own.

Measured alternatives (docs/performance.md, isolation section): the two statements as
extended-protocol queries in libpq's pipeline mode (one Sync) make the same single round trip,
but cost the client about 30 µs more per transaction than one simple query; queuing
``set_config`` and the statement in psycopg's ``pipeline()`` still sends ``BEGIN`` as a round trip
of its own, and its bookkeeping costs more CPU than the round trip it saves on a local connection.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg import generators, pq
from sqlalchemy.util import await_

from pgkeel.session._dbapi import driver_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SET_TENANT_DBAPI: Final = "SELECT set_config('app.tenant_id', %s, true)"
"""The tenant setting as a driver query (``%s``: the value, a bound parameter)."""
_SET_TENANT_SQL: Final = b"; SELECT set_config('app.tenant_id', %s, true)"
_IDLE: Final = pq.TransactionStatus.IDLE
_PIPELINE_OFF: Final = pq.PipelineStatus.OFF
_FAILED: Final = (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.NONFATAL_ERROR)
_AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]
_log = logging.getLogger("pgkeel.session")


def _can_begin(driver: _AnyConnection) -> bool:
    """Not begun yet, not in AUTOCOMMIT, no pipeline of psycopg's own."""
    pgconn = driver.pgconn
    return (
        pgconn.transaction_status == _IDLE
        and not driver.autocommit
        and pgconn.pipeline_status == _PIPELINE_OFF
    )


_Characteristics = tuple[int | None, bool | None, bool | None]
"""A transaction's isolation level, read-only and deferrable settings (None: the server's)."""


def _begin_words(characteristics: _Characteristics) -> str:
    """The ``BEGIN`` psycopg sends for these transaction characteristics."""
    isolation_level, read_only, deferrable = characteristics
    words = ["BEGIN"]
    if isolation_level is not None:
        level = psycopg.IsolationLevel(isolation_level)
        words.append(f"ISOLATION LEVEL {level.name.replace('_', ' ')}")
    if read_only is not None:
        words.append("READ ONLY" if read_only else "READ WRITE")
    if deferrable is not None:
        words.append("DEFERRABLE" if deferrable else "NOT DEFERRABLE")
    return " ".join(words)


_COMMANDS: dict[tuple[_Characteristics, bytes], bytes] = {}
_COMMANDS_KEPT: Final = 4096


def _characteristics(driver: _AnyConnection) -> _Characteristics:
    """``driver``'s transaction characteristics, as psycopg reads them for its ``BEGIN``."""
    return (driver.isolation_level, driver.read_only, driver.deferrable)


def _command(driver: _AnyConnection, value: bytes) -> bytes:
    """``BEGIN ...; SELECT set_config('app.tenant_id', '<value>', true)``: one simple query.

    The value (a tenant id, or empty) is quoted by libpq; the query is kept per transaction
    characteristics and value (at most ``_COMMANDS_KEPT``, all forgotten when full), since
    quoting a UUID's hex digits and dashes gives the same text on every connection.
    """
    key = (_characteristics(driver), value)
    known = _COMMANDS.get(key)
    if known is not None:
        return known
    quoted = pq.Escaping(driver.pgconn).escape_literal(value)
    if len(_COMMANDS) >= _COMMANDS_KEPT:
        _COMMANDS.clear()
    command = _COMMANDS[key] = _begin_words(key[0]).encode() + _SET_TENANT_SQL % quoted
    return command


def _raise_first_error(driver: _AnyConnection, results: list[pq.abc.PGresult]) -> None:
    for result in results:
        if result.status in _FAILED:
            raise psycopg.errors.error_from_result(result, encoding=driver.info.encoding)


def _sync_begin(driver: psycopg.Connection[Any], value: bytes) -> list[pq.abc.PGresult] | None:
    with driver.lock:
        if not _can_begin(driver):
            return None
        driver.pgconn.send_query(_command(driver, value))
        results: list[pq.abc.PGresult] = driver.wait(generators.execute(driver.pgconn))
        return results


async def _async_begin(
    driver: psycopg.AsyncConnection[Any], value: bytes
) -> list[pq.abc.PGresult] | None:
    async with driver.lock:
        if not _can_begin(driver):
            return None
        driver.pgconn.send_query(_command(driver, value))
        return await driver.wait(generators.execute(driver.pgconn))


def begin_with_tenant(connection: Connection, value: str) -> bool:
    """``BEGIN`` + ``set_config('app.tenant_id', value, true)`` in one round trip, if it applies.

    False (nothing sent) when the transaction has begun already, psycopg's pipeline is open or
    the driver is not psycopg 3; raises PostgreSQL's error if either failed.
    """
    driver = driver_of(connection)
    encoded = value.encode()
    if isinstance(driver, psycopg.Connection):
        results = _sync_begin(driver, encoded)
    elif isinstance(driver, psycopg.AsyncConnection):
        results = await_(_async_begin(driver, encoded))
    else:
        return False
    if results is None:
        return False
    if _log.isEnabledFor(logging.DEBUG):
        begin = _begin_words(_characteristics(driver))
        _log.debug("%s; %s -- %r", begin, SET_TENANT_DBAPI, value)
    _raise_first_error(driver, results)
    return True
