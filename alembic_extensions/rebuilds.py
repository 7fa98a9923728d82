"""What a column type change without a table rewrite still does to the table, asked of PostgreSQL.

``ALTER COLUMN ... TYPE`` that keeps the table's file (``varchar(50)`` to ``varchar(100)`` or
``text``, ``timestamp`` to ``timestamptz`` in UTC) still rebuilds, under the same ACCESS
EXCLUSIVE lock, every index on the column it cannot reuse: one with a predicate or an expression
(every partial unique rule of a soft-deleted table), and one whose operator class or collation
changes. And PostgreSQL refuses some changes outright (a column that a stored generated column
reads), which only shows when the migration runs.

Both are asked of PostgreSQL itself: the change is made on an empty temporary copy of the table
(``LIKE ... INCLUDING ALL``: its indexes, checks, defaults and generated columns) inside a
savepoint rolled back at once. An index of the copy that gets a new file is one the change
rebuilds; the copy's indexes are matched to the table's by their definitions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from alembic_extensions.probes import IN_MIGRATION_TIME_ZONE

if TYPE_CHECKING:
    from sqlalchemy import Connection

_COPY = "pgkeel_type_probe_copy"
_INDEX_FILES = text(
    "SELECT i.relname AS name, x.indisunique AS is_unique, i.relfilenode AS file,"
    " substr(d.definition, strpos(d.definition, ' USING ') + 7) AS definition"
    " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid,"
    " LATERAL (SELECT pg_get_indexdef(x.indexrelid) AS definition) d"
    " WHERE x.indrelid = to_regclass(:relation) ORDER BY x.indexrelid"
)
"""Each index of a table: its name, whether unique, its file, its definition after ``USING``
(the method, the keys, ``INCLUDE`` and the predicate: what a copy's index shares with it)."""


class TypeChangeOutcome(NamedTuple):
    """What the change does besides the column: indexes rebuilt, or PostgreSQL's refusal."""

    rebuilt: list[str]
    refused: str | None = None


class _IndexFile(NamedTuple):
    name: str
    is_unique: bool
    file: int
    definition: str


def _index_files(connection: Connection, relation: str) -> list[_IndexFile]:
    rows = connection.execute(_INDEX_FILES, {"relation": relation})
    return [_IndexFile(*row) for row in rows]


def _names_in_table(table: list[_IndexFile], changed: list[_IndexFile]) -> list[str]:
    """The table's names of the copy's ``changed`` indexes, matched by definition."""
    unmatched = list(table)
    names: list[str] = []
    for index in changed:
        same = next(
            (
                mine
                for mine in unmatched
                if (mine.is_unique, mine.definition) == (index.is_unique, index.definition)
            ),
            None,
        )
        if same is None:
            names.append(index.definition)
            continue
        unmatched.remove(same)
        names.append(same.name)
    return names


def _alter(column: str, type_: str) -> str:
    """``ALTER TABLE <copy> ALTER COLUMN column TYPE type_``."""
    return (
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}")
        .format(sql.Identifier(_COPY), sql.Identifier(column), sql.SQL(type_))
        .as_string()
    )


def type_change_outcome(  # noqa: PLR0913  # the change, and the type it starts from
    connection: Connection,
    schema: str | None,
    table: str,
    column: str,
    new_type: str,
    *,
    from_type: str | None = None,
) -> TypeChangeOutcome:
    """Which indexes of the table changing ``column`` to ``new_type`` rebuilds, or why it fails.

    ``from_type``: the type the column has first (a downgrade's change back starts from the
    upgrade's type); the copy's column is changed to it before its indexes are read.
    A server that cannot make the copy (a read-only standby) says nothing: no index rebuilt.
    """
    source = sql.Identifier(*([schema] if schema else []), table)
    create = sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING ALL)").format(
        sql.Identifier(_COPY), source
    )
    alter = _alter(column, new_type)
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(IN_MIGRATION_TIME_ZONE)
        try:
            connection.exec_driver_sql(create.as_string())
            if from_type is not None:
                connection.exec_driver_sql(_alter(column, from_type).replace("%", "%%"))
        except DBAPIError:
            return TypeChangeOutcome([])
        before = _index_files(connection, _COPY)
        try:
            connection.exec_driver_sql(alter.replace("%", "%%"))
        except DBAPIError as exc:
            message = str(exc.orig) if exc.orig is not None else str(exc)
            return TypeChangeOutcome([], " ".join(message.split()))
        after = {index.name: index.file for index in _index_files(connection, _COPY)}
    finally:
        savepoint.rollback()
    changed = [index for index in before if after.get(index.name) != index.file]
    if not changed:
        return TypeChangeOutcome([])
    return TypeChangeOutcome(_names_in_table(_index_files(connection, source.as_string()), changed))
