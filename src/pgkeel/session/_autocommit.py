"""``AUTOCOMMIT`` statements outside a tenant context run in a transaction that cleared the tenant.

In ``AUTOCOMMIT`` each statement is its own transaction, and behind PgBouncer in transaction mode
each may run on another server connection, one where another client left a session-level
``app.tenant_id`` (a stray ``SET``). Clearing the value with a statement of its own would clear it
on one server connection and run the next statement on another. So each statement is wrapped:
``BEGIN; SELECT set_config('app.tenant_id', '', true)`` in one round trip, the statement, then
``COMMIT`` (``ROLLBACK`` if it failed). PgBouncer keeps a transaction on one server connection,
so the statement sees the cleared value, whatever the connection held.

Statements that PostgreSQL refuses inside a transaction block (``VACUUM``, ``CREATE INDEX
CONCURRENTLY``, ``CREATE DATABASE``, ...) are run as they are: they read no rows through
row-level security. They are told by their first words (past leading comments), never by a word
found further in, which a query's string literal or comment could hold. Transaction control
(``BEGIN``, ``COMMIT``, ...) is left alone too; after a ``BEGIN`` of the application's own, the
value is cleared for that transaction instead.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Final

from pgkeel.session._dbapi import driver_in_transaction, run_fixed
from pgkeel.session._statement_head import statement_head, statement_heads

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, ExceptionContext

_BEGIN_CLEARED: Final = "BEGIN; SELECT set_config('app.tenant_id', '', true)"
_CLEAR_LOCAL: Final = "SELECT set_config('app.tenant_id', '', true)"
_WRAPPED: Final = "pgkeel_autocommit_transaction"
"""``Connection.info`` key: pgkeel opened a transaction around the statement being run."""
_OUTSIDE_TRANSACTIONS: Final = re.compile(
    r"(VACUUM|CLUSTER|REINDEX|CHECKPOINT|DISCARD\s+ALL|ALTER\s+SYSTEM"
    r"|(CREATE|DROP|ALTER)\s+(DATABASE|TABLESPACE|SUBSCRIPTION)"
    r"|CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY|DROP\s+INDEX\s+CONCURRENTLY)\b"
    r"|ALTER\s+TABLE\b[^;']*\bDETACH\s+PARTITION\b[^;']*\bCONCURRENTLY\s*;?\s*\Z",
    re.IGNORECASE,
)
"""The commands PostgreSQL refuses in a transaction block, read from the statement's first word.

``CONCURRENTLY`` counts only where it makes a command refuse transactions (``CREATE INDEX``,
``DROP INDEX``, ``ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY``): the word in a string
literal or a comment of an ordinary statement must not take that statement out of its clearing
transaction. ``VACUUM``, ``CLUSTER`` and ``REINDEX`` run as they are whatever their arguments
(they read no rows through row-level security), but only alone in their text: see
``_runs_outside_transactions``. ``REFRESH MATERIALIZED VIEW CONCURRENTLY``
runs in a transaction block, so it is wrapped like any other statement.
"""
_TRANSACTION_CONTROL: Final = re.compile(
    r"(BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b",
    re.IGNORECASE,
)


def _runs_outside_transactions(head: str, statement: str) -> bool:
    """A command PostgreSQL refuses in a transaction block, alone in its text.

    In a text of several statements it is wrapped like any other: PostgreSQL runs such a text
    as one transaction block, which ``VACUUM`` refuses anyway, and ``REINDEX`` runs in one, so
    the statements after it must not escape the clearing transaction.
    """
    if not _OUTSIDE_TRANSACTIONS.match(head):
        return False
    return ";" not in statement or len(statement_heads(statement)) < 2


def begin_cleared(connection: Connection, statement: str) -> bool:
    """Before an ``AUTOCOMMIT`` statement: a transaction of its own, ``app.tenant_id`` cleared.

    True when that transaction was opened (``commit_cleared`` ends it after the statement).
    """
    head = statement_head(statement)
    if _TRANSACTION_CONTROL.match(head) or _runs_outside_transactions(head, statement):
        return False
    if driver_in_transaction(connection):  # the application's own BEGIN
        run_fixed(connection, _CLEAR_LOCAL)
        return False
    run_fixed(connection, _BEGIN_CLEARED)
    connection.info[_WRAPPED] = True
    return True


def commit_cleared(connection: Connection) -> None:
    """After the statement: end the transaction ``begin_cleared`` opened."""
    if connection.info.pop(_WRAPPED, False):
        run_fixed(connection, "COMMIT")


def rollback_cleared(context: ExceptionContext) -> None:
    """``handle_error``: the statement failed; end the transaction ``begin_cleared`` opened."""
    connection = context.connection
    if connection is None or not connection.info.pop(_WRAPPED, False):
        return
    with contextlib.suppress(Exception):  # a broken connection is discarded by the pool anyway
        run_fixed(connection, "ROLLBACK")
