"""Query statistics from pg_stat_statements, and the sizes of the largest relations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgkeel.doctor.context import MARKER, USER_RELATION, Check, Problem
from pgkeel.doctor.model import QueryStat, RelationSize

if TYPE_CHECKING:
    from pgkeel.doctor.context import Context

ENABLE_PG_STAT_STATEMENTS = (
    "add shared_preload_libraries = 'pg_stat_statements' to postgresql.conf (on a managed "
    "service: its parameter group or flags), restart the server, then run "
    "CREATE EXTENSION pg_stat_statements; in this database"
)
_EXTENSION = (
    "SELECT format('%I.pg_stat_statements', n.nspname) FROM pg_extension e "
    "JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'pg_stat_statements' AND 'pg_stat_statements' = ANY "
    "(string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))"
)
_STATEMENTS = (
    "WITH s AS (SELECT query, calls, total_exec_time, mean_exec_time, rows FROM {view} "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query NOT LIKE :marker), "
    "t AS (SELECT nullif(sum(total_exec_time), 0) AS total FROM s) "
    "SELECT s.query, s.calls, s.total_exec_time AS total_ms, s.mean_exec_time AS mean_ms, "
    "s.rows, coalesce(s.total_exec_time / t.total, 0) AS share FROM s, t "
)


def _statements_view(ctx: Context) -> str | None:
    """``schema.pg_stat_statements`` when the extension is installed and loaded, else None."""
    view = ctx.value(_EXTENSION)
    return None if view is None else str(view)


def _statements(ctx: Context, view: str, tail: str, **params: object) -> list[QueryStat]:
    query = _STATEMENTS.format(view=view) + tail
    rows = ctx.rows(query, marker=f"%{MARKER.strip()}%", **params)
    return [
        QueryStat(
            query=row["query"],
            calls=int(row["calls"]),
            total_ms=round(float(row["total_ms"]), 3),
            mean_ms=round(float(row["mean_ms"]), 3),
            rows=int(row["rows"]),
            share=round(float(row["share"]), 4),
        )
        for row in rows
    ]


def top_queries(ctx: Context) -> tuple[list[QueryStat], list[QueryStat]]:
    """The top statements by total and by mean execution time ([] without pg_stat_statements)."""
    view = _statements_view(ctx)
    if view is None:
        return [], []
    top = ctx.thresholds.top
    by_total = _statements(ctx, view, "ORDER BY s.total_exec_time DESC LIMIT :top", top=top)
    by_mean = _statements(ctx, view, "ORDER BY s.mean_exec_time DESC LIMIT :top", top=top)
    return by_total, by_mean


def slow_query(ctx: Context) -> list[Problem]:
    """Statements whose mean time and number of calls both pass their thresholds."""
    view = _statements_view(ctx)
    if view is None:
        ctx.note(
            "slow-query",
            "not-applicable",
            "pg_stat_statements is not enabled in this database. "
            f"Fix: {ENABLE_PG_STAT_STATEMENTS}.",
        )
        return []
    limits = ctx.thresholds
    tail = "WHERE s.mean_exec_time >= :ms AND s.calls >= :calls ORDER BY s.total_exec_time DESC"
    return [
        Problem(
            object=stat.query[:120],
            message=(
                f"a statement takes {stat.mean_ms:.1f} ms on average over {stat.calls:,} calls "
                f"({stat.share:.0%} of the database's execution time)."
            ),
            evidence={
                "calls": stat.calls,
                "mean_ms": stat.mean_ms,
                "total_ms": stat.total_ms,
                "rows": stat.rows,
                "share": stat.share,
                "query": stat.query,
            },
            fix="EXPLAIN (ANALYZE, BUFFERS) <the statement with real values>;  -- then add the "
            "index it lacks (CREATE INDEX CONCURRENTLY ...) or rewrite it",
        )
        for stat in _statements(
            ctx, view, tail, ms=limits.slow_query_ms, calls=limits.slow_query_calls
        )
    ]


_UNLOCKED = (
    " AND c.oid NOT IN (SELECT l.relation FROM pg_locks l WHERE l.mode = 'AccessExclusiveLock' "
    "AND l.relation IS NOT NULL) "
)
"""Skips a table DDL holds or awaits: measuring it would queue behind that lock."""
_TABLE_PAGES = (
    "c.relpages + coalesce((SELECT t.relpages FROM pg_class t WHERE t.oid = c.reltoastrelid), 0) "
    "+ coalesce((SELECT sum(x.relpages) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid "
    "WHERE i.indrelid = c.oid), 0)"
)
"""The planner's page count of a table with its TOAST and indexes: read without opening it."""
_USER_TABLES = (
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'm') AND " + USER_RELATION + _UNLOCKED
)
_TABLE_CANDIDATES = (
    "(SELECT c.oid::bigint AS oid " + _USER_TABLES + "ORDER BY " + _TABLE_PAGES + " DESC "
    "LIMIT 3 * :top) UNION (SELECT c.oid::bigint " + _USER_TABLES + "AND c.reltuples < 0)"
)
"""The tables with the most pages by the planner's count, and those never vacuumed or analyzed
(their page count is 0 whatever their size): the ones worth measuring."""
_TABLE_SIZES = (
    "SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_total_relation_size(c.oid) AS bytes "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.oid = ANY (CAST(:oids AS bigint[])::oid[])"
)
_MEASURED_AT_ONCE = 500
"""Tables measured per savepoint: rolling it back releases their locks before the next ones."""


def _largest_tables(ctx: Context, top: int) -> list[RelationSize]:
    oids = [int(row["oid"]) for row in ctx.rows(_TABLE_CANDIDATES, top=top)]
    sizes = []
    for first in range(0, len(oids), _MEASURED_AT_ONCE):
        savepoint = ctx.connection.begin_nested()
        try:
            rows = ctx.rows(_TABLE_SIZES, oids=oids[first : first + _MEASURED_AT_ONCE])
        finally:
            savepoint.rollback()
        sizes += [RelationSize(r["name"], int(r["bytes"])) for r in rows if r["bytes"] is not None]
    return sorted(sizes, key=lambda size: (-size.bytes, size.name))[:top]


_LARGEST_INDEXES = (
    "WITH candidates AS MATERIALIZED (SELECT ci.oid, format('%I.%I', n.nspname, ci.relname) "
    "AS name, format('%I.%I', n.nspname, c.relname) AS table_name FROM pg_index i "
    "JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + USER_RELATION + _UNLOCKED + "AND "
    "ci.oid NOT IN (SELECT l.relation FROM pg_locks l WHERE l.mode = 'AccessExclusiveLock' "
    "AND l.relation IS NOT NULL) ORDER BY ci.relpages DESC LIMIT 3 * :top) "
    "SELECT name, pg_relation_size(oid) AS bytes, table_name FROM candidates "
    "ORDER BY 2 DESC, 1 LIMIT :top"
)


def largest(ctx: Context) -> tuple[int, list[RelationSize], list[RelationSize]]:
    """The database's size, and its largest tables (with indexes and TOAST) and indexes.

    Opening every relation to measure it costs more than every check together on a large
    schema, so the planner's page counts pick three times as many candidates as are listed, and
    only those are measured, with the tables never vacuumed or analyzed (the planner has no
    page count for them).
    """
    top = ctx.thresholds.top
    database = int(ctx.value("SELECT pg_database_size(current_database())"))  # type: ignore[call-overload]
    tables = _largest_tables(ctx, top)
    indexes = [
        RelationSize(r["name"], int(r["bytes"]), r["table_name"])
        for r in ctx.rows(_LARGEST_INDEXES, top=top)
    ]
    return database, tables, indexes


QUERY_CHECKS = (Check("slow-query", "queries", "warning", "Slow queries", slow_query),)
