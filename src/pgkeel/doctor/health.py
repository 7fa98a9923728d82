"""Health checks on tables: cache, dead rows, bloat, vacuum and analyze, transaction ID age."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgkeel.doctor.context import USER_RELATION, Check, Problem

if TYPE_CHECKING:
    from sqlalchemy.engine import RowMapping

    from pgkeel.doctor.context import Context

_HIT_RATIOS = (
    "SELECT 'tables' AS kind, coalesce(sum(heap_blks_hit), 0)::bigint AS hit, "
    "coalesce(sum(heap_blks_read), 0)::bigint AS read FROM pg_statio_user_tables UNION ALL "
    "SELECT 'indexes', coalesce(sum(idx_blks_hit), 0)::bigint, "
    "coalesce(sum(idx_blks_read), 0)::bigint "
    "FROM pg_statio_user_indexes"
)


def cache_hit_ratio(ctx: Context) -> list[Problem]:
    """Share of table and index block reads served from shared buffers, if below the threshold."""
    wanted = ctx.thresholds.cache_hit_ratio_min
    problems = []
    for row in ctx.rows(_HIT_RATIOS):
        total = int(row["hit"]) + int(row["read"])
        if total == 0 or total < ctx.thresholds.cache_min_blocks:
            continue
        ratio = int(row["hit"]) / total
        if ratio < wanted:
            problems.append(
                Problem(
                    object=row["kind"],
                    message=(
                        f"{ratio:.1%} of {row['kind']} block reads came from shared buffers, "
                        f"below {wanted:.0%}: the working set does not fit in memory."
                    ),
                    evidence={"hit_ratio": round(ratio, 4), "hit": row["hit"], "read": row["read"]},
                    fix=(
                        "setting shared_buffers: raise it (about 25% of the server's memory), "
                        "or give the server more memory; first check the largest sequential "
                        "scans (seq-scan-heavy, the top queries)"
                    ),
                )
            )
    return problems


_TABLE_STATS = (
    "SELECT format('%I.%I', s.schemaname, s.relname) AS table_name, s.n_live_tup, s.n_dead_tup, "
    "s.n_mod_since_analyze, s.n_ins_since_vacuum, s.seq_scan, coalesce(s.idx_scan, 0) AS idx_scan, "
    "extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum)) / 86400 AS vacuum_days,"
    " extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) / 86400 "
    "AS analyze_days, coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o "
    "WHERE o.option_name = 'autovacuum_enabled'), 'on') AS autovacuum "
    "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + USER_RELATION + " ORDER BY 1"
)


def _table_stats(ctx: Context) -> list[RowMapping]:
    return ctx.shared_rows(_TABLE_STATS)


def _autovacuum_hint(row: RowMapping) -> str:
    if row["autovacuum"].lower() in {"off", "false", "0", "no"}:
        return f" ALTER TABLE {row['table_name']} RESET (autovacuum_enabled);  -- autovacuum is off"
    return ""


def dead_tuples(ctx: Context) -> list[Problem]:
    """Tables where dead rows pass the threshold share: autovacuum is not keeping up."""
    limits = ctx.thresholds
    problems = []
    for row in _table_stats(ctx):
        dead, live = int(row["n_dead_tup"]), int(row["n_live_tup"])
        if dead < limits.dead_tuple_min or dead < limits.dead_tuple_ratio * (dead + live):
            continue
        share = dead / (dead + live)
        problems.append(
            Problem(
                object=row["table_name"],
                message=(
                    f"{dead:,} dead rows ({share:.0%}) in {row['table_name']}: scans read them, "
                    "and the table grows."
                ),
                evidence={"dead_rows": dead, "live_rows": live, "dead_ratio": round(share, 4)},
                fix=f"VACUUM (ANALYZE) {row['table_name']};" + _autovacuum_hint(row),
            )
        )
    return problems


def _stale(days: float | None, limit: float) -> bool:
    return days is None or float(days) > limit


def vacuum_stale(ctx: Context) -> list[Problem]:
    """Changed tables never vacuumed, or not for longer than the threshold."""
    limits = ctx.thresholds
    return [
        _maintenance_problem(row, "vacuumed", row["vacuum_days"], "VACUUM (ANALYZE)")
        for row in _table_stats(ctx)
        if int(row["n_live_tup"]) + int(row["n_dead_tup"]) >= limits.maintenance_min_rows
        and (int(row["n_dead_tup"]) > 0 or int(row["n_ins_since_vacuum"]) > 0)
        and _stale(row["vacuum_days"], limits.maintenance_max_age_days)
    ]


def analyze_stale(ctx: Context) -> list[Problem]:
    """Changed tables never analyzed, or not for longer than the threshold: stale plans."""
    limits = ctx.thresholds
    return [
        _maintenance_problem(row, "analyzed", row["analyze_days"], "ANALYZE")
        for row in _table_stats(ctx)
        if int(row["n_live_tup"]) + int(row["n_dead_tup"]) >= limits.maintenance_min_rows
        and int(row["n_mod_since_analyze"]) > 0
        and _stale(row["analyze_days"], limits.maintenance_max_age_days)
    ]


def _maintenance_problem(row: RowMapping, done: str, days: float | None, command: str) -> Problem:
    when = "never been " + done if days is None else f"not been {done} for {float(days):.1f} days"
    return Problem(
        object=row["table_name"],
        message=f"table {row['table_name']} has {when} since its rows changed.",
        evidence={
            "days_since": None if days is None else round(float(days), 1),
            "live_rows": row["n_live_tup"],
            "changed_rows": row["n_mod_since_analyze"],
        },
        fix=f"{command} {row['table_name']};" + _autovacuum_hint(row),
    )


def seq_scan_heavy(ctx: Context) -> list[Problem]:
    """Large tables read mostly by sequential scans: a query lacks its index."""
    limits = ctx.thresholds
    problems = []
    for row in _table_stats(ctx):
        seq, idx = int(row["seq_scan"] or 0), int(row["idx_scan"])
        if row["n_live_tup"] < limits.seq_scan_min_rows or seq == 0:
            continue
        share = idx / (seq + idx)
        if share < limits.index_usage_min_ratio:
            problems.append(
                Problem(
                    object=row["table_name"],
                    message=(
                        f"only {share:.0%} of the scans of {row['table_name']} "
                        f"({row['n_live_tup']:,} rows) use an index."
                    ),
                    evidence={
                        "seq_scans": seq,
                        "index_scans": idx,
                        "index_ratio": round(share, 4),
                        "live_rows": row["n_live_tup"],
                    },
                    fix=(
                        "find the queries that scan it (the top queries, EXPLAIN), then CREATE "
                        f"INDEX CONCURRENTLY ON {row['table_name']} (<their filter columns>);"
                    ),
                )
            )
    return problems


_BLOAT = (
    "WITH big AS MATERIALIZED (SELECT n.nspname, c.relname FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND (c.relpages "
    ">= :min_pages OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid "
    "WHERE i.indrelid = c.oid AND x.relpages >= :min_pages))), "
    "st AS MATERIALIZED (SELECT schemaname, tablename, attname, avg_width, null_frac "
    "FROM pg_stats WHERE (schemaname, tablename) IN (SELECT nspname, relname FROM big) "
    "AND schemaname NOT IN ('pg_catalog', 'information_schema')), "
    "tw AS (SELECT schemaname, tablename, sum((1 - null_frac) * avg_width) AS width "
    "FROM st GROUP BY 1, 2), "
    "ik AS (SELECT i.indexrelid, i.indrelid, k.attnum FROM pg_index i "
    "JOIN pg_class ci ON ci.oid = i.indexrelid, unnest(i.indkey::int2[]) k(attnum) "
    "WHERE ci.relam = (SELECT oid FROM pg_am WHERE amname = 'btree') AND ci.relpages > 1), "
    "iw AS (SELECT ik.indexrelid, sum(coalesce(st.avg_width, 8)) AS width FROM ik "
    "JOIN pg_class c ON c.oid = ik.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_attribute a ON a.attrelid = ik.indrelid AND a.attnum = ik.attnum "
    "LEFT JOIN st ON st.schemaname = n.nspname AND st.tablename = c.relname "
    "AND st.attname = a.attname GROUP BY 1) "
    "SELECT 'table' AS kind, format('%I.%I', n.nspname, c.relname) AS name, "
    "NULL::text AS table_name, c.relpages::bigint AS pages, c.reltuples, "
    "24 + 4 + ceil(tw.width / 8) * 8 AS tuple_bytes, "
    "coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o "
    "WHERE o.option_name = 'fillfactor'), 100) AS fillfactor, 24 AS page_overhead "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN tw ON tw.schemaname = n.nspname AND tw.tablename = c.relname "
    "WHERE c.relkind = 'r' AND c.relpages > 0 AND c.reltuples >= 0 AND " + USER_RELATION + " "
    "UNION ALL "
    "SELECT 'index', format('%I.%I', n.nspname, ci.relname), format('%I.%I', n.nspname, "
    "c.relname), greatest(ci.relpages - 1, 0)::bigint, ci.reltuples, "
    "8 + 4 + ceil(iw.width / 8) * 8, "
    "coalesce((SELECT o.option_value::int FROM pg_options_to_table(ci.reloptions) o "
    "WHERE o.option_name = 'fillfactor'), 90), 24 + 16 "
    "FROM pg_index i JOIN iw ON iw.indexrelid = i.indexrelid "
    "JOIN pg_class ci ON ci.oid = i.indexrelid "
    "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE ci.reltuples >= 0 AND "
    "EXISTS (SELECT 1 FROM tw WHERE tw.schemaname = n.nspname AND tw.tablename = c.relname) "
    "AND " + USER_RELATION
)


def _bloat(ctx: Context, kind: str) -> list[Problem]:
    limits = ctx.thresholds
    block = int(ctx.value("SELECT current_setting('block_size')::int"))  # type: ignore[call-overload]
    problems = []
    min_pages = limits.bloat_min_bytes // block
    for row in ctx.shared_rows(_BLOAT, min_pages=min_pages):
        if row["kind"] != kind:
            continue
        per_page = (
            (block - row["page_overhead"]) * row["fillfactor"] / 100 / float(row["tuple_bytes"])
        )
        expected = -(-float(row["reltuples"]) // per_page)
        wasted = int((row["pages"] - expected) * block)
        ratio = wasted / (row["pages"] * block)
        if ratio >= limits.bloat_ratio and wasted >= limits.bloat_min_bytes:
            problems.append(_bloat_problem(row, wasted, ratio, block))
    return problems


def _bloat_problem(row: RowMapping, wasted: int, ratio: float, block: int) -> Problem:
    if row["kind"] == "table":
        fix = (
            f"VACUUM (FULL, ANALYZE) {row['name']};  -- rewrites the table under an ACCESS "
            f"EXCLUSIVE lock; online: pg_repack --table {row['name']}"
        )
    else:
        fix = f"REINDEX INDEX CONCURRENTLY {row['name']};"
    where = f" on {row['table_name']}" if row["table_name"] else ""
    return Problem(
        object=row["name"],
        message=(
            f"{row['kind']} {row['name']}{where} is about {ratio:.0%} empty space "
            f"({wasted / 1048576:.1f} MiB), estimated from its row count and row width."
        ),
        evidence={
            "bytes": int(row["pages"]) * block,
            "wasted_bytes": wasted,
            "bloat_ratio": round(ratio, 4),
        },
        fix=fix,
    )


def table_bloat(ctx: Context) -> list[Problem]:
    """Tables whose estimated empty space passes both bloat thresholds."""
    return _bloat(ctx, "table")


def index_bloat(ctx: Context) -> list[Problem]:
    """B-tree indexes whose estimated empty space passes both bloat thresholds."""
    return _bloat(ctx, "index")


_XID_AGE = (
    "SELECT format('%I.%I', n.nspname, c.relname) AS table_name, "
    "greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS xid_age, "
    "current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_class t ON t.oid = c.reltoastrelid "
    "WHERE c.relkind IN ('r', 'm') AND c.relfrozenxid <> '0'::xid "
    "AND greatest(age(c.relfrozenxid), age(t.relfrozenxid)) "
    "    >= :ratio * current_setting('autovacuum_freeze_max_age')::bigint "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' ORDER BY 2 DESC, 1"
)
_WRAPAROUND_STOP = 2**31 - 3_000_000


def xid_age(ctx: Context) -> list[Problem]:
    """Tables whose oldest unfrozen transaction ID passes the share of autovacuum_freeze_max_age."""
    return [
        Problem(
            object=row["table_name"],
            message=(
                f"table {row['table_name']} has transaction IDs {row['xid_age']:,} transactions "
                f"old (autovacuum_freeze_max_age is {row['freeze_max_age']:,}): vacuum is not "
                "freezing it; at about 2.1 billion the server stops accepting writes."
            ),
            evidence={
                "xid_age": row["xid_age"],
                "autovacuum_freeze_max_age": row["freeze_max_age"],
                "transactions_left": _WRAPAROUND_STOP - int(row["xid_age"]),
            },
            fix=(
                f"VACUUM (FREEZE, VERBOSE) {row['table_name']};  -- and end what holds it back: "
                "long transactions, idle in transaction sessions, inactive replication slots, "
                "forgotten prepared transactions"
            ),
        )
        for row in ctx.rows(_XID_AGE, ratio=ctx.thresholds.xid_age_ratio)
    ]


HEALTH_CHECKS = (
    Check("cache-hit-ratio", "health", "warning", "Cache hit ratio", cache_hit_ratio),
    Check("dead-tuples", "health", "warning", "Dead rows", dead_tuples),
    Check("table-bloat", "health", "warning", "Table bloat (estimated)", table_bloat),
    Check("index-bloat", "health", "warning", "Index bloat (estimated)", index_bloat),
    Check("vacuum-stale", "health", "warning", "Never or long ago vacuumed", vacuum_stale),
    Check("analyze-stale", "health", "warning", "Never or long ago analyzed", analyze_stale),
    Check("xid-age", "health", "error", "Transaction ID age", xid_age),
    Check("seq-scan-heavy", "health", "warning", "Tables read by sequential scans", seq_scan_heavy),
)
