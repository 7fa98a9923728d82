"""Asking PostgreSQL itself, on an empty temporary table in a savepoint rolled back at once.

Some comparisons need PostgreSQL's own answer rather than text: how it stores a default, a check
or an index predicate, and whether a change rewrites a table. Each makes an empty temporary
table (a copy of a table's columns, or a column of a given type), runs the change on it inside
a savepoint, reads the answer and rolls the savepoint back: nothing is left behind, and the
real table is only read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ClauseElement, Connection
    from sqlalchemy.engine import Dialect

_FILENODE = text("SELECT pg_relation_filenode(to_regclass(:name))")
MIGRATION_TIME_ZONE = "UTC"
"""The ``TimeZone`` every migration runs in (``timeouts.TimeoutGuard``), and every probe.

A change between ``timestamp`` and ``timestamptz`` rewrites the table, and shifts every value,
unless the session's time zone is UTC: what PostgreSQL does depends on the session, so the
migration pins it and the probe asks in the same one.
"""
IN_MIGRATION_TIME_ZONE = f"SET LOCAL TimeZone = '{MIGRATION_TIME_ZONE}'"
"""Run first inside a probe's savepoint: its rollback restores the session's own time zone."""
_SAVEPOINT = "pgkeel_probe"
_PERCENT_STYLES = ("format", "pyformat")
_ROLLBACK = f"ROLLBACK TO SAVEPOINT {_SAVEPOINT};\nRELEASE SAVEPOINT {_SAVEPOINT}"


def literal_sql(clause: ClauseElement, dialect: Dialect, *, include_table: bool = True) -> str:
    """``clause`` compiled with its values written in, as PostgreSQL reads it.

    For a driver whose parameters are written ``%s`` or ``%(name)s``, SQLAlchemy doubles every
    ``%`` of the SQL it compiles (``LIKE 'a%'`` becomes ``LIKE 'a%%'``); the text compared with
    the catalog's, and sent to a probe (which doubles it again itself), is the SQL as written.
    """
    kwargs = {"literal_binds": True, "include_table": include_table}
    compiled = str(clause.compile(dialect=dialect, compile_kwargs=kwargs))
    return compiled.replace("%%", "%") if dialect.paramstyle in _PERCENT_STYLES else compiled


def temporary_copy(probe: str, schema: str | None, table: str) -> str:
    """``CREATE TEMPORARY TABLE probe (LIKE table)``: an empty copy of ``table``'s columns."""
    return (
        sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {})")
        .format(sql.Identifier(probe), sql.Identifier(*(part for part in (schema, table) if part)))
        .as_string()
    )


def _as_sent(statement: str) -> str:
    """``statement`` for the driver, which reads ``%`` as a placeholder when not doubled."""
    return statement.replace("%", "%%")


def stored_form(connection: Connection, statements: Sequence[str], read: str) -> str | None:
    """Run ``statements``, then ``read`` (one value, as text); None if PostgreSQL refuses one.

    Both are SQL as PostgreSQL reads it: a ``%`` in a name or a literal is sent as written.

    Two round trips: the savepoint and ``statements`` go as one simple query, ``read`` and the
    rollback of the savepoint as another (``read`` is the first of its results, and takes no
    parameters). When PostgreSQL refuses a statement it runs none after it, so the rollback is
    then sent on its own: either way nothing is left behind and the transaction goes on.
    """
    setup = ";\n".join([f"SAVEPOINT {_SAVEPOINT}", *statements])
    try:
        connection.exec_driver_sql(_as_sent(setup))
        stored = connection.exec_driver_sql(_as_sent(f"{read};\n{_ROLLBACK}")).scalar()
    except DBAPIError:
        connection.exec_driver_sql(_ROLLBACK)
        return None
    return None if stored is None else str(stored)


def rewrites(connection: Connection, create: str, alter: str, probe: str) -> bool:
    """Whether ``alter`` gives the table ``probe`` (made by ``create``) a new file: a rewrite.

    PostgreSQL's error (``DBAPIError``) is raised when it refuses either statement.
    """
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(IN_MIGRATION_TIME_ZONE)
        connection.exec_driver_sql(create)
        before = connection.execute(_FILENODE, {"name": probe}).scalar_one()
        connection.exec_driver_sql(alter)
        after = connection.execute(_FILENODE, {"name": probe}).scalar_one()
    finally:
        savepoint.rollback()
    return bool(before != after)
