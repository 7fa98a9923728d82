"""``op.backfill``: update the rows of a table that holds many, in batches a live service survives.

One ``UPDATE`` of a whole table holds its row locks until it commits, bloats it at once and, if
it fails at the last row, has done nothing. ``op.backfill(table, values, where=...)`` updates the
rows that ``where`` still selects in batches of ``batch_size``, in primary-key order, each batch a
transaction of its own (inside an autocommit block, which it opens itself) under the migration's
``lock_timeout`` and ``statement_timeout``. ``where`` names the rows still to do (``tenant_id IS
NULL``), so a run that was interrupted (a timeout, a deploy, Ctrl-C) resumes where it stopped:
the batches already committed no longer match.

On a table whose row-level security hides its rows from the migration's role (a tenant table,
RLS forced, migrated by its owner), the batches go through the tenants one after the other.

Progress goes to the log (logger ``alembic_extensions.backfill``, at INFO: the start, every tenth
of the way, the end) and, when standard error is a terminal, to one line kept up to date: rows
done of the total, rate and time left. Offline (``alembic upgrade --sql``) it writes a ``DO``
block that runs the same batches and commits after each.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from alembic.operations import MigrateOperation
from alembic.util import CommandError
from psycopg import sql
from sqlalchemy import text

from pgkeel.dbobjects import qualified
from pgkeel.tenancy import TENANT_COLUMN

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from alembic.operations import Operations
    from sqlalchemy.engine import Connection

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
LOG_STEPS = 10
"""Progress is logged each time another tenth of the rows is done."""
_CLEAR_LINE = "\r\x1b[K"


class BackfillOp(MigrateOperation):
    """Set ``values`` (SQL expressions by column) on the rows ``where`` selects, in batches."""

    def __init__(  # noqa: PLR0913  # the operation's public signature
        self,
        table_name: str,
        values: Mapping[str, str],
        *,
        where: str,
        batch_size: int = BATCH_SIZE,
        key: str = "id",
        schema: str | None = None,
        reverse_values: Mapping[str, str] | None = None,
        reverse_where: str | None = None,
    ) -> None:
        if not values:
            raise ValueError(f"op.backfill({table_name!r}): values names no column to set.")
        if batch_size < 1:
            raise ValueError(f"op.backfill({table_name!r}): batch_size must be 1 or more.")
        self.table_name = table_name
        self.values = dict(values)
        self.where = where
        self.batch_size = batch_size
        self.key = key
        self.schema = schema
        self.reverse_values = dict(reverse_values) if reverse_values else None
        self.reverse_where = reverse_where

    def reverse(self) -> MigrateOperation:
        """The backfill of ``reverse_values`` when given; else nothing (the downgrade decides)."""
        from alembic_extensions.ops import NoOp  # noqa: PLC0415  # ops registers this module's op

        if self.reverse_values is None:
            return NoOp()
        return BackfillOp(
            self.table_name,
            self.reverse_values,
            where=self.reverse_where or "true",
            batch_size=self.batch_size,
            key=self.key,
            schema=self.schema,
            reverse_values=self.values,
            reverse_where=self.where,
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("backfill", table, columns)``."""
        return ("backfill", self.table_name, tuple(self.values))

    @classmethod
    def backfill(  # noqa: PLR0913  # the operation's public signature
        cls,
        operations: Operations,
        table_name: str,
        values: Mapping[str, str],
        *,
        where: str,
        batch_size: int = BATCH_SIZE,
        key: str = "id",
        schema: str | None = None,
        reverse_values: Mapping[str, str] | None = None,
        reverse_where: str | None = None,
    ) -> None:
        """Update ``table_name`` in batches: ``values`` maps columns to SQL expressions.

        ``where`` selects the rows still to do and must stop matching a row once it is done
        (``"tenant_id IS NULL"``); ``key`` is the primary-key column the batches follow. With
        ``reverse_values`` (and ``reverse_where``) the downgrade runs the opposite backfill.
        """
        operations.invoke(
            cls(
                table_name,
                values,
                where=where,
                batch_size=batch_size,
                key=key,
                schema=schema,
                reverse_values=reverse_values,
                reverse_where=reverse_where,
            )
        )

    @property
    def table(self) -> sql.Composable:
        """The table, qualified."""
        return qualified(self.schema, self.table_name)

    def _assignments(self) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.SQL(_escaped(expression)))
            for column, expression in self.values.items()
        )

    def batch_statement(self, *, first: bool) -> sql.Composed:
        """One batch: update the next rows after ``%(after)s``; their count and last key."""
        key, table = sql.Identifier(self.key), self.table
        after = sql.SQL("") if first else sql.SQL("{} > %(after)s AND ").format(key)
        return sql.SQL(
            "WITH pgkeel_batch AS (SELECT {key} FROM {table} WHERE {after}({where})"
            " ORDER BY {key} LIMIT {size}),"
            " pgkeel_updated AS (UPDATE {table} SET {assignments} FROM pgkeel_batch"
            " WHERE {table}.{key} = pgkeel_batch.{key} RETURNING {table}.{key})"
            " SELECT count(*), (SELECT {key} FROM pgkeel_updated ORDER BY {key} DESC LIMIT 1)"
            " FROM pgkeel_updated"
        ).format(
            key=key,
            table=table,
            after=after,
            where=sql.SQL(_escaped(self.where)),
            size=sql.Literal(self.batch_size),
            assignments=self._assignments(),
        )

    def count_statement(self) -> sql.Composed:
        """The number of rows still to do."""
        return sql.SQL("SELECT count(*) FROM {} WHERE ({})").format(
            self.table, sql.SQL(_escaped(self.where))
        )

    def offline_statement(self) -> sql.Composed:
        """A ``DO`` block that runs the batches and commits after each (for ``--sql``)."""
        key_type = sql.SQL("{}.{}%TYPE").format(self.table, sql.Identifier(self.key))
        loop = sql.SQL(
            "DECLARE after {key_type}; last_key {key_type}; done bigint; "
            "BEGIN LOOP "
            "WITH pgkeel_batch AS (SELECT {key} FROM {table} WHERE (after IS NULL OR {key} > after)"
            " AND ({where}) ORDER BY {key} LIMIT {size}),"
            " pgkeel_updated AS (UPDATE {table} SET {assignments} FROM pgkeel_batch"
            " WHERE {table}.{key} = pgkeel_batch.{key} RETURNING {table}.{key})"
            " SELECT count(*), (SELECT {key} FROM pgkeel_updated ORDER BY {key} DESC LIMIT 1)"
            " INTO done, last_key FROM pgkeel_updated; "
            "EXIT WHEN done = 0; after := last_key; COMMIT; END LOOP; END"
        ).format(
            key_type=key_type,
            key=sql.Identifier(self.key),
            table=self.table,
            where=sql.SQL(self.where),
            size=sql.Literal(self.batch_size),
            assignments=sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(column), sql.SQL(expression))
                for column, expression in self.values.items()
            ),
        )
        # Each batch commits: re-running the block after a failure resumes (``where``).
        return sql.SQL("-- squawk-ignore prefer-robust-stmts\nDO {}").format(
            sql.Literal(loop.as_string())
        )


def _escaped(expression: str) -> str:
    """``expression`` for a statement sent with parameters: a literal ``%`` doubled."""
    return expression.replace("%", "%%")


@dataclass
class Progress:
    """Rows done of the total, the rate and the time left: on a terminal line and in the log."""

    table: str
    total: int
    stream: TextIO | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    logged_step: int = 0

    def line(self) -> str:
        """``backfill orders: 1,200 of 5,000 rows (24%), 850 rows/s, 4s left``."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        share = self.done * 100 // self.total if self.total else 100
        left = (self.total - self.done) / rate if rate else 0.0
        return (
            f"backfill {self.table}: {self.done:,} of {self.total:,} rows ({share}%), "
            f"{rate:,.0f} rows/s, {_duration(left)} left"
        )

    def start(self) -> None:
        """Say what is about to happen."""
        logger.info("backfill %s: %s rows to update", self.table, f"{self.total:,}")
        self._show()

    def advance(self, rows: int) -> None:
        """Count ``rows`` more, redraw the line, log each further tenth."""
        self.done += rows
        self._show()
        step = self.done * LOG_STEPS // self.total if self.total else LOG_STEPS
        if step > self.logged_step and self.done < self.total:
            self.logged_step = step
            logger.info("%s", self.line())

    def finish(self) -> None:
        """The final line: rows done, time taken, rate."""
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed else 0.0
        message = (
            f"backfill {self.table}: {self.done:,} rows updated in {_duration(elapsed)} "
            f"({rate:,.0f} rows/s)"
        )
        logger.info("%s", message)
        if self.stream is not None:
            self.stream.write(f"{_CLEAR_LINE}{message}\n")
            self.stream.flush()

    def _show(self) -> None:
        if self.stream is not None:
            self.stream.write(f"{_CLEAR_LINE}{self.line()}")
            self.stream.flush()


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:  # a minute
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, rest = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{rest:02d}s"


def _terminal() -> TextIO | None:
    return sys.stderr if sys.stderr.isatty() else None


_HIDDEN_BY_RLS = text(
    "SELECT c.relrowsecurity"
    " AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))"
    " AND NOT r.rolsuper AND NOT r.rolbypassrls"
    " FROM pg_class c, pg_roles r"
    " WHERE c.oid = to_regclass(:table) AND r.rolname = current_user"
)
"""Whether row-level security filters the table for this role (superusers, ``BYPASSRLS``
roles and, without ``FORCE``, its owner see every row)."""
_TENANT_SOURCE = text(
    "SELECT k.confrelid::regclass::text, ta.attname FROM pg_constraint k"
    " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]"
    " JOIN pg_attribute ta ON ta.attrelid = k.confrelid AND ta.attnum = k.confkey[1]"
    " WHERE k.conrelid = to_regclass(:table) AND k.contype = 'f'"
    " AND cardinality(k.conkey) = 1 AND a.attname = :column"
)
_SET_TENANT = "SELECT set_config('app.tenant_id', %(tenant)s, true)"


def tenants_to_go_through(connection: Connection, op: BackfillOp) -> list[str | None]:
    """``[None]`` when this role sees every row; else each tenant, whose rows it sees in turn.

    A table of tenant rows has row-level security, forced for its owner: a migration run as the
    owner (``NOBYPASSRLS``, as it should be) and no tenant set sees none of its rows, and a
    backfill would update none. Each batch then runs in a transaction that sets the tenant, one
    tenant after the other, taken from the table ``tenant_id`` refers to.
    """
    relation = op.table.as_string()
    hidden = connection.execute(_HIDDEN_BY_RLS, {"table": relation}).scalar()
    if not hidden:
        return [None]
    source = connection.execute(
        _TENANT_SOURCE, {"table": relation, "column": TENANT_COLUMN}
    ).first()
    if source is None:
        raise CommandError(
            f"op.backfill({op.table_name!r}): row-level security hides the table's rows from "
            f"this role, and its {TENANT_COLUMN} refers to no table of tenants to go through: "
            "the backfill would update nothing. Fix: run the migration as a role that bypasses "
            "row-level security (BYPASSRLS), or give the table a foreign key to its tenants."
        )
    table, column = source
    ids = connection.exec_driver_sql(
        sql.SQL("SELECT {}::text FROM {} ORDER BY 1")
        .format(sql.Identifier(column), sql.SQL(table))
        .as_string()
    )
    return [str(tenant) for tenant in ids.scalars()]


@contextmanager
def _as_tenant(connection: Connection, tenant: str | None) -> Iterator[None]:
    """A transaction of its own with ``tenant`` set (None: each statement on its own)."""
    if tenant is None:
        yield
        return
    connection.exec_driver_sql("BEGIN")
    try:
        connection.exec_driver_sql(_SET_TENANT, {"tenant": tenant})
        yield
    except BaseException:
        connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


def run_backfill(connection: Connection, op: BackfillOp) -> int:
    """Run ``op``'s batches on an autocommit ``connection``; the number of rows updated."""
    tenants = tenants_to_go_through(connection, op)
    total = 0
    for tenant in tenants:
        with _as_tenant(connection, tenant):
            counted = connection.exec_driver_sql(op.count_statement().as_string()).scalar_one()
            total += int(counted)
    name = op.table_name if op.schema is None else f"{op.schema}.{op.table_name}"
    progress = Progress(name, total, _terminal())
    progress.start()
    for tenant in tenants:
        after: object = None
        while True:
            statement = op.batch_statement(first=after is None).as_string()
            with _as_tenant(connection, tenant):
                count, last = connection.exec_driver_sql(statement, {"after": after}).one()
            if not count:
                break
            after = last
            progress.advance(int(count))
    progress.finish()
    return progress.done
