"""Run every check in one read-only transaction and collect the report."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import psycopg
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from pgkeel.database import parse_database_url
from pgkeel.doctor.activity import ACTIVITY_CHECKS
from pgkeel.doctor.context import (
    MARKER,
    Check,
    Context,
    DoctorError,
    Problem,
    connection_cause,
)
from pgkeel.doctor.health import HEALTH_CHECKS
from pgkeel.doctor.model import Finding, QueryStat, RelationSize, Report
from pgkeel.doctor.queries import QUERY_CHECKS, largest, top_queries
from pgkeel.doctor.runtime import RUNTIME_CHECKS
from pgkeel.doctor.schema import SCHEMA_CHECKS
from pgkeel.doctor.thresholds import Thresholds
from pgkeel.roles._attributes import sql_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy.engine import URL, Connection

__all__ = ["CHECKS", "DoctorError", "diagnose"]

T = TypeVar("T")
CHECKS: tuple[Check, ...] = (
    *SCHEMA_CHECKS,
    *RUNTIME_CHECKS,
    *HEALTH_CHECKS,
    *ACTIVITY_CHECKS,
    *QUERY_CHECKS,
)
"""Every check, in the order of the report."""
APPLICATION_NAME = "pgkeel doctor"
REQUIRED_ROLE = "pg_monitor"


_PRIVILEGES = (
    "SELECT current_user, r.rolsuper OR pg_has_role(current_user, :role, 'USAGE') "
    "FROM pg_roles r WHERE r.rolname = current_user"
)


def _check_privileges(connection: Connection) -> None:
    role, allowed = connection.execute(text(MARKER + _PRIVILEGES), {"role": REQUIRED_ROLE}).one()
    if not allowed:
        raise DoctorError(
            f"role {role!r} lacks the {REQUIRED_ROLE} privileges pgkeel doctor needs to read "
            "every session's activity, the query statistics and the replication state. "
            f"Fix: GRANT {REQUIRED_ROLE} TO {sql_name(role)}; (run as a superuser or a role "
            f"with ADMIN OPTION on {REQUIRED_ROLE}), or run pgkeel doctor as a role that has it."
        )


@contextmanager
def _read_only(bind: Engine, thresholds: Thresholds) -> Iterator[Connection]:
    """A connection in a READ ONLY transaction with the doctor's statement and lock timeouts."""
    try:
        connection = bind.connect()
    except OperationalError as exc:
        url = bind.url.render_as_string(hide_password=True)
        raise DoctorError(
            f"cannot connect to {url}: {connection_cause(exc)}. Fix: start the server, or pass "
            "the right URL (--url, or DATABASE_URL)."
        ) from None
    with connection:
        connection.execute(text("SET TRANSACTION READ ONLY"))
        for name, value in (
            ("statement_timeout", thresholds.statement_timeout_ms),
            ("lock_timeout", thresholds.lock_timeout_ms),
            ("jit", "off"),  # compiling the catalog queries costs more than running them
        ):
            connection.execute(
                text("SELECT set_config(:name, :value, true)"), {"name": name, "value": str(value)}
            )
        _check_privileges(connection)
        try:
            yield connection
        finally:
            connection.rollback()


def _guarded(ctx: Context, name: str, step: Callable[[Context], T], fallback: T) -> T:
    """``step(ctx)`` in a savepoint; a timeout or missing privilege becomes a note instead."""
    savepoint = ctx.connection.begin_nested()
    try:
        result = step(ctx)
    except DBAPIError as exc:
        savepoint.rollback()
        ctx.note(name, "not-run", _failure_reason(exc, ctx.thresholds))
        return fallback
    savepoint.commit()
    return result


def _run_check(ctx: Context, check: Check) -> list[Finding]:
    """The findings of one check (none, and a note, when it cannot run)."""
    problems: list[Problem] = _guarded(ctx, check.id, check.run, [])
    return [check.finding(problem) for problem in problems]


def _failure_reason(exc: DBAPIError, thresholds: Thresholds) -> str:
    cause = exc.orig
    if isinstance(cause, psycopg.errors.QueryCanceled):
        return (
            f"it ran longer than statement_timeout_ms = {thresholds.statement_timeout_ms}. "
            "Fix: raise statement_timeout_ms in [tool.pgkeel.doctor]."
        )
    if isinstance(cause, psycopg.errors.LockNotAvailable):
        return (
            f"it waited longer than lock_timeout_ms = {thresholds.lock_timeout_ms} for a lock "
            "(DDL was running). Fix: run the doctor again later."
        )
    if isinstance(cause, psycopg.errors.OutOfMemory):
        return (
            f"the server ran out of memory for it ({str(cause).strip()}). Fix: raise "
            "max_locks_per_transaction, or run the doctor again later."
        )
    if isinstance(cause, psycopg.errors.InsufficientPrivilege):
        return f"missing privilege: {str(cause).strip()}. Fix: GRANT pg_monitor to this role."
    raise exc


def _as_engine(bind: str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(bind, Engine):
        return bind, False
    url = parse_database_url(bind, source="the doctor's URL") if isinstance(bind, str) else bind
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"application_name": APPLICATION_NAME}
    )
    return engine, True


def diagnose(
    bind: str | URL | Engine,
    *,
    runtime_url: str | None = None,
    thresholds: Thresholds | None = None,
    checks: tuple[Check, ...] = CHECKS,
) -> Report:
    """Check the database at ``bind`` (a URL or an Engine) read-only and return the report.

    ``runtime_url`` adds the runtime-role check for the role the service connects as.
    """
    limits = thresholds or Thresholds()
    engine, owned = _as_engine(bind)
    started = time.perf_counter()
    try:
        with _read_only(engine, limits) as connection:
            ctx = Context(connection, limits, runtime_url)
            findings = [finding for check in checks for finding in _run_check(ctx, check)]
            sizes: tuple[int, list[RelationSize], list[RelationSize]] = (0, [], [])
            database_bytes, tables, indexes = _guarded(ctx, "sizes", largest, sizes)
            queries: tuple[list[QueryStat], list[QueryStat]] = ([], [])
            by_total, by_mean = _guarded(ctx, "top-queries", top_queries, queries)
            name, version = connection.execute(
                text("SELECT current_database(), current_setting('server_version')")
            ).one()
    finally:
        if owned:
            engine.dispose()
    return Report(
        database=name,
        server_version=version,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        duration_s=round(time.perf_counter() - started, 3),
        findings=tuple(findings),
        notes=tuple(ctx.notes),
        database_bytes=database_bytes,
        largest_tables=tuple(tables),
        largest_indexes=tuple(indexes),
        top_by_total=tuple(by_total),
        top_by_mean=tuple(by_mean),
        thresholds=limits.as_dict(),
    )
