"""``lock_timeout``, ``statement_timeout`` and ``TimeZone`` for every migration, online and offline.

Online, each transaction the migration connection begins starts with
``set_config(name, value, true)``: the setting lives as long as that transaction (one
migration with ``transaction_per_migration``). Statements inside
``op.get_context().autocommit_block()`` run outside any transaction, so there the settings are
made for the session and reset when the run ends. Offline (``alembic upgrade --sql``), the
script starts with session-level ``SET`` statements, which cover every statement ``psql`` runs.

Defaults: ``lock_timeout`` 5 s (a migration waiting behind a long transaction fails fast instead
of queueing every query of the service behind it) and ``statement_timeout`` 1 h (long enough
for ``CREATE INDEX CONCURRENTLY`` on a large table, short enough to end a runaway statement).
``TimeZone`` is always UTC: what a change between ``timestamp`` and ``timestamptz`` does (a
rewrite or not, which values) depends on it, and the plugin checked that change in UTC; a
deploy's session in another zone would rewrite the table and shift every value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql
from sqlalchemy import event

from alembic_extensions.probes import MIGRATION_TIME_ZONE
from pgkeel._values import Value

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPICursor

_PENDING = "pgkeel_timeouts_pending"


class Timeouts(Value):
    """The timeouts every migration runs with; ``None`` leaves the server's setting alone."""

    lock_timeout: str | None = "5s"
    statement_timeout: str | None = "1h"

    def settings(self) -> list[tuple[str, str]]:
        """``(name, value)`` of each timeout that is set, then the migration's ``TimeZone``."""
        pairs = [("lock_timeout", self.lock_timeout), ("statement_timeout", self.statement_timeout)]
        timeouts = [(name, value) for name, value in pairs if value is not None]
        return [*timeouts, ("TimeZone", MIGRATION_TIME_ZONE)]

    def offline_sql(self) -> list[str]:
        """The statements that open an offline script: session-level ``SET`` of each timeout.

        An offline script has no bind parameters; the value is quoted as a literal by psycopg
        (and PostgreSQL validates it). ``SET`` is also what squawk looks for.
        """
        return [
            sql.SQL("SET {} = {}").format(sql.SQL(name), sql.Literal(value)).as_string()
            for name, value in self.settings()
        ]


def _is_autocommit(connection: Connection) -> bool:
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


class TimeoutGuard:
    """Applies ``Timeouts`` to each transaction (and autocommit block) of one connection."""

    def __init__(self, connection: Connection, timeouts: Timeouts) -> None:
        self.connection = connection
        self.settings = timeouts.settings()
        self.session_level = False
        calls = ", ".join(["set_config(%s, %s, %s)"] * len(self.settings))
        self.statement = f"SELECT {calls}"  # the values are bound: nothing to compose

    def __enter__(self) -> TimeoutGuard:
        if self.settings:
            event.listen(self.connection, "begin", self._on_begin)
            event.listen(self.connection, "before_cursor_execute", self._before_execute)
            if self.connection.in_transaction():
                self.connection.info[_PENDING] = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.settings:
            return
        event.remove(self.connection, "begin", self._on_begin)
        event.remove(self.connection, "before_cursor_execute", self._before_execute)
        self.connection.info.pop(_PENDING, None)
        if self.session_level and not self.connection.closed:
            self._reset_session()

    def _on_begin(self, connection: Connection) -> None:
        connection.info[_PENDING] = True

    def _before_execute(self, connection: Connection, cursor: DBAPICursor, *_: object) -> None:
        """First statement of a transaction: make the settings, transaction-local if possible."""
        if not connection.info.pop(_PENDING, False):
            return
        local = not _is_autocommit(connection)
        self.session_level = self.session_level or not local
        params = [part for name, value in self.settings for part in (name, value, local)]
        cursor.execute(self.statement, params)

    def _reset_session(self) -> None:
        """Undo the session-level settings made for autocommit blocks."""
        was_in_transaction = self.connection.in_transaction()
        for name, _value in self.settings:
            statement = sql.SQL("RESET {}").format(sql.Identifier(name)).as_string()
            self.connection.exec_driver_sql(statement)
        if not was_in_transaction:
            self.connection.commit()
