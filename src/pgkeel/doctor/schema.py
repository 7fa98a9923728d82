"""Schema checks: indexes, keys, column types and row-level security, from the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg.errors import LockNotAvailable, QueryCanceled
from sqlalchemy import MetaData, Table, column, func, select, table
from sqlalchemy.exc import DBAPIError

from pgkeel.doctor.context import USER_RELATION, Check, Problem, ident
from pgkeel.naming import index_name
from pgkeel.tenancy import POLICY_NAME, TENANT_COLUMN, tenant_policy, tenant_row_security

if TYPE_CHECKING:
    from sqlalchemy.engine import RowMapping

    from pgkeel.doctor.context import Context

_RELATION = "JOIN pg_class c ON c.oid = {oid} JOIN pg_namespace n ON n.oid = c.relnamespace "
_TABLE_NAME = "format('%I.%I', n.nspname, c.relname)"
_PLAIN_TABLE = "c.relkind IN ('r', 'p') AND NOT c.relispartition AND "
_COVERS_FK = (
    "(i.indkey::int2[])[0:cardinality(k.conkey) - 1] @> k.conkey "
    "AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] <@ k.conkey"
)
"""An index ``i`` whose leading columns are the columns of foreign key ``k``, in any order."""
TYPE_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}

_FK_WITHOUT_INDEX = (
    "SELECT n.nspname AS schema, c.relname AS table, " + _TABLE_NAME + " AS table_name, "
    "k.conname, format('%I.%I', rn.nspname, rc.relname) AS referenced, "
    "ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(attnum, i) "
    "      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum "
    "      ORDER BY u.i) AS columns, "
    "ARRAY(SELECT quote_ident(a.attname) FROM unnest(k.conkey) WITH ORDINALITY u(attnum, i) "
    "      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum "
    "      ORDER BY u.i) AS quoted, "
    "c.reltuples::bigint AS rows "
    "FROM pg_constraint k " + _RELATION.format(oid="k.conrelid") + "JOIN pg_class rc ON rc.oid = "
    "k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
    "WHERE k.contype = 'f' AND k.conparentid = 0 AND " + USER_RELATION + " AND NOT EXISTS ("
    "SELECT 1 FROM pg_index i WHERE i.indrelid = k.conrelid AND i.indpred IS NULL "
    "AND i.indisvalid AND " + _COVERS_FK + ") ORDER BY 3, 4"
)


def fk_without_index(ctx: Context) -> list[Problem]:
    """Foreign keys whose columns lead no index: deletes on the parent scan the whole child."""
    return [
        Problem(
            object=f"{row['table_name']} ({', '.join(row['quoted'])})",
            message=(
                f"foreign key {row['conname']} to {row['referenced']} has no index on its "
                "columns: every delete or key update of the referenced rows scans this table."
            ),
            evidence={"constraint": row["conname"], "estimated_rows": max(row["rows"], 0)},
            fix=(
                f"CREATE INDEX CONCURRENTLY {ident(index_name(row['table'], row['columns']))} "
                f"ON {row['table_name']} ({', '.join(row['quoted'])});"
            ),
        )
        for row in ctx.rows(_FK_WITHOUT_INDEX)
    ]


_INDEXES = (
    "WITH ix AS (SELECT i.indexrelid, i.indrelid, i.indisunique, i.indnkeyatts, i.indnatts, "
    "(i.indkey::int2[])[0:i.indnkeyatts - 1] AS keys, "
    "(i.indclass::oid[])[0:i.indnkeyatts - 1] AS classes, "
    "pg_get_expr(i.indexprs, i.indrelid) AS exprs, pg_get_expr(i.indpred, i.indrelid) AS pred, "
    "ci.relam, format('%I.%I', n.nspname, ci.relname) AS name, "
    "format('%I.%I', n.nspname, c.relname) AS table_name, "
    "k.conindid IS NOT NULL AS backs_constraint "
    "FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid "
    "LEFT JOIN (SELECT DISTINCT conindid FROM pg_constraint WHERE contype IN ('p', 'u', 'x')) k "
    "ON k.conindid = i.indexrelid "
    + _RELATION.format(oid="i.indrelid")
    + "WHERE i.indisvalid AND "
    + USER_RELATION
    + ") "
    "SELECT DISTINCT ON (a.indexrelid) a.name, a.table_name, "
    "pg_get_indexdef(a.indexrelid) AS definition, b.name AS covering_name, "
    "pg_get_indexdef(b.indexrelid) AS covering_definition, "
    "pg_relation_size(a.indexrelid) AS bytes, a.indnkeyatts = b.indnkeyatts AS exact "
    "FROM ix a JOIN ix b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid "
    "AND b.relam = a.relam AND b.exprs IS NOT DISTINCT FROM a.exprs "
    "AND b.pred IS NOT DISTINCT FROM a.pred "
    "AND b.keys[1:a.indnkeyatts] = a.keys AND b.classes[1:a.indnkeyatts] = a.classes "
    "WHERE NOT a.backs_constraint AND a.indnatts = a.indnkeyatts "
    "AND (a.relam = (SELECT oid FROM pg_am WHERE amname = 'btree') "
    "     OR a.indnkeyatts = b.indnkeyatts) "
    "AND (NOT a.indisunique OR (b.indisunique AND b.indnkeyatts = a.indnkeyatts)) "
    "AND (a.indnkeyatts < b.indnkeyatts OR b.backs_constraint "
    "     OR (b.indisunique AND NOT a.indisunique) "
    "     OR (b.indisunique = a.indisunique AND b.indnatts > a.indnatts) "
    "     OR (b.indisunique = a.indisunique AND b.indnatts = a.indnatts "
    "         AND a.indexrelid > b.indexrelid)) "
    "ORDER BY a.indexrelid, b.indnkeyatts, b.indexrelid"
)


def duplicate_index(ctx: Context) -> list[Problem]:
    """Indexes another index of the same table makes useless: the same or a longer key."""
    rows = sorted(ctx.rows(_INDEXES), key=lambda row: row["name"])
    return [
        Problem(
            object=row["name"],
            message=(
                f"index {row['name']} on {row['table_name']} is "
                f"{'a duplicate of' if row['exact'] else 'a prefix of'} {row['covering_name']}, "
                "which serves the same lookups: it costs writes and space for nothing."
            ),
            evidence={
                "bytes": row["bytes"],
                "definition": row["definition"],
                "covered_by": row["covering_definition"],
            },
            fix=f"DROP INDEX CONCURRENTLY {row['name']};",
        )
        for row in rows
    ]


_STATS_AGE_DAYS = (
    "SELECT extract(epoch FROM now() - coalesce(stats_reset, pg_postmaster_start_time())) / 86400 "
    "FROM pg_stat_database WHERE datname = current_database()"
)
_UNUSED = (
    "SELECT format('%I.%I', s.schemaname, s.indexrelname) AS name, " + _TABLE_NAME + " AS "
    "table_name, pg_relation_size(s.indexrelid) AS bytes, pg_get_indexdef(s.indexrelid) AS "
    "definition FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid "
    + _RELATION.format(oid="s.relid")
    + "WHERE s.idx_scan = 0 AND NOT i.indisunique AND i.indisvalid AND "
    + USER_RELATION
    + " AND i.indexrelid NOT IN (SELECT conindid FROM pg_constraint) "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f' "
    "AND k.conrelid = i.indrelid AND " + _COVERS_FK + ") ORDER BY 3 DESC, 1"
)


def unused_index(ctx: Context) -> list[Problem]:
    """Indexes never scanned since the statistics began, that back no constraint or foreign key."""
    age = float(ctx.value(_STATS_AGE_DAYS) or 0)  # type: ignore[arg-type]
    wanted = ctx.thresholds.unused_index_min_stats_days
    if age < wanted:
        ctx.note(
            "unused-index",
            "not-applicable",
            f"the statistics cover {age:.1f} days, fewer than unused_index_min_stats_days = "
            f"{wanted}: too short to call an index unused.",
        )
        return []
    return [
        Problem(
            object=row["name"],
            message=(
                f"index {row['name']} on {row['table_name']} has not been scanned once in the "
                f"{age:.1f} days of statistics; it backs no constraint and no foreign key."
            ),
            evidence={"bytes": row["bytes"], "scans": 0, "stats_days": round(age, 1)},
            fix=(
                f"DROP INDEX CONCURRENTLY {row['name']};  -- first check that no replica, "
                "report or rare job uses it (statistics are per server)"
            ),
        )
        for row in ctx.rows(_UNUSED)
    ]


_INVALID_INDEX = (
    "SELECT format('%I.%I', n.nspname, ci.relname) AS name, " + _TABLE_NAME + " AS table_name, "
    "pg_relation_size(i.indexrelid) AS bytes, i.indisunique AS is_unique "
    "FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid "
    + _RELATION.format(oid="i.indrelid")
    + "WHERE NOT i.indisvalid AND "
    + USER_RELATION
    + " AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p "
    "WHERE p.index_relid = i.indexrelid) ORDER BY 1"
)


def invalid_index(ctx: Context) -> list[Problem]:
    """INVALID indexes (a failed CREATE INDEX CONCURRENTLY): written to, never read."""
    return [
        Problem(
            object=row["name"],
            message=(
                f"index {row['name']} on {row['table_name']} is INVALID: queries cannot use it, "
                "yet every write still updates it"
                + (", and it enforces no uniqueness." if row["is_unique"] else ".")
            ),
            evidence={"bytes": row["bytes"], "unique": row["is_unique"]},
            fix=(
                f"REINDEX INDEX CONCURRENTLY {row['name']};  -- or, if it is not wanted: "
                f"DROP INDEX CONCURRENTLY {row['name']};"
            ),
        )
        for row in ctx.rows(_INVALID_INDEX)
    ]


_INVALID_CONSTRAINT = (
    "SELECT " + _TABLE_NAME + " AS table_name, k.conname, quote_ident(k.conname) AS quoted, "
    "pg_get_constraintdef(k.oid) AS definition FROM pg_constraint k "
    + _RELATION.format(oid="k.conrelid")
    + "WHERE NOT k.convalidated AND "
    + USER_RELATION
    + " ORDER BY 1, 2"
)


def invalid_constraint(ctx: Context) -> list[Problem]:
    """Constraints added NOT VALID and never validated: old rows may break them."""
    return [
        Problem(
            object=f"{row['table_name']} {row['quoted']}",
            message=(
                f"constraint {row['conname']} on {row['table_name']} was added NOT VALID and "
                "never validated: rows written before it may break it."
            ),
            evidence={"definition": row["definition"]},
            fix=(
                f"ALTER TABLE {row['table_name']} VALIDATE CONSTRAINT {row['quoted']};  "
                "-- takes a SHARE UPDATE EXCLUSIVE lock: reads and writes go on"
            ),
        )
        for row in ctx.rows(_INVALID_CONSTRAINT)
    ]


_NO_PRIMARY_KEY = (
    "SELECT " + _TABLE_NAME + " AS table_name, c.reltuples::bigint AS rows FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _PLAIN_TABLE + USER_RELATION + " "
    "AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
    "ORDER BY 1"
)


def no_primary_key(ctx: Context) -> list[Problem]:
    """Tables without a primary key: no row can be named, logical replication cannot update."""
    return [
        Problem(
            object=row["table_name"],
            message=(
                f"table {row['table_name']} has no primary key: rows cannot be told apart, and "
                "logical replication cannot replicate its updates and deletes."
            ),
            evidence={"estimated_rows": max(row["rows"], 0)},
            fix=(
                "CREATE UNIQUE INDEX CONCURRENTLY <name> ON " + row["table_name"] + " (<key>); "
                "ALTER TABLE " + row["table_name"] + " ADD PRIMARY KEY USING INDEX <name>;  "
                "-- or add a uuid column: pgkeel's UUIDPrimaryKeyMixin"
            ),
        )
        for row in ctx.rows(_NO_PRIMARY_KEY)
    ]


_NAIVE_TIMESTAMPS = (
    "SELECT " + _TABLE_NAME + " AS table_name, a.attname::text AS column_name, "
    "quote_ident(a.attname) AS quoted "
    "FROM pg_attribute a " + _RELATION.format(oid="a.attrelid") + "WHERE a.atttypid IN "
    "('timestamp'::regtype, 'timestamp[]'::regtype) AND a.attnum > 0 AND NOT a.attisdropped "
    "AND " + _PLAIN_TABLE + USER_RELATION + " ORDER BY 1, 2"
)


def naive_timestamp(ctx: Context) -> list[Problem]:
    """``timestamp without time zone`` columns: the same value means different instants."""
    return [
        Problem(
            object=f"{row['table_name']}.{row['quoted']}",
            message=(
                f"column {row['table_name']}.{row['column_name']} is timestamp without time "
                "zone: the instant it means depends on each writer's time zone."
            ),
            evidence={"type": "timestamp without time zone"},
            fix=(
                f"BEGIN; SET LOCAL timezone = 'UTC'; ALTER TABLE {row['table_name']} ALTER "
                f"COLUMN {row['quoted']} TYPE timestamptz; COMMIT;  -- with the "
                "session in UTC, PostgreSQL 12+ changes the type without rewriting the table "
                "(a brief ACCESS EXCLUSIVE lock); the stored values are read as UTC"
            ),
        )
        for row in ctx.rows(_NAIVE_TIMESTAMPS)
    ]


_SEQUENCES = (
    "SELECT format('%I.%I', s.schemaname, s.sequencename) AS name, s.data_type::text AS seq_type, "
    "s.last_value, s.max_value, s.min_value, s.increment_by, "
    "CASE WHEN t.oid IS NOT NULL THEN format('%I.%I', tn.nspname, t.relname) END AS table_name, "
    "quote_ident(a.attname) AS column_name, "
    "format_type(a.atttypid, NULL) AS column_type, "
    "has_sequence_privilege(sc.oid, 'SELECT') OR has_sequence_privilege(sc.oid, 'USAGE') "
    "AS readable "
    "FROM pg_sequences s JOIN pg_namespace sn ON sn.nspname = s.schemaname "
    "JOIN pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename "
    "LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid "
    "AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i') "
    "LEFT JOIN pg_class t ON t.oid = d.refobjid "
    "LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace "
    "LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
    "WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
)


def _sequence_range(row: RowMapping) -> int:
    """How far the sequence may go in its direction: its own bound or its column type's."""
    column_max = TYPE_MAX.get(row["column_type"] or "", TYPE_MAX["bigint"])
    if row["increment_by"] > 0:
        return int(min(row["max_value"], column_max))
    return int(-max(row["min_value"], -column_max - 1))


def _sequence_used(row: RowMapping) -> float:
    """The share of the sequence's range used: from where it starts to the bound it goes to."""
    last = int(row["last_value"])
    if row["increment_by"] > 0:
        start, end = int(row["min_value"]), _sequence_range(row)
    else:
        start, end = int(row["max_value"]), -_sequence_range(row)
    span = abs(end - start)
    return abs(last - start) / span if span else 1.0


def _sequence_problem(row: RowMapping, ratio: float) -> Problem:
    owner = f"{row['table_name']}.{row['column_name']}" if row["column_name"] else None
    used = f"{ratio:.0%}"
    widen = f"ALTER SEQUENCE {row['name']} AS bigint;"
    if owner and row["column_type"] != "bigint":
        widen = (
            f"ALTER TABLE {row['table_name']} ALTER COLUMN {row['column_name']} TYPE "
            f"bigint; {widen}  -- the type change rewrites the table under an ACCESS EXCLUSIVE "
            "lock: on a large table add a bigint column, backfill it in batches and swap"
        )
    return Problem(
        object=row["name"],
        message=(
            f"sequence {row['name']}{f' (behind {owner})' if owner else ''} has used {used} "
            "of its range: inserts fail when it runs out."
        ),
        evidence={
            "last_value": row["last_value"],
            "limit": _sequence_range(row) * (1 if row["increment_by"] > 0 else -1),
            "used_ratio": round(ratio, 4),
            "column_type": row["column_type"] or row["seq_type"],
        },
        fix=widen,
    )


def sequence_near_limit(ctx: Context) -> list[Problem]:
    """Sequences and identity columns past the threshold share of their type's range."""
    problems, unreadable = [], []
    for row in ctx.rows(_SEQUENCES):
        if not row["readable"]:
            unreadable.append(row["name"])
        if row["last_value"] is None:
            continue
        ratio = _sequence_used(row)
        if ratio >= ctx.thresholds.sequence_max_ratio:
            problems.append(_sequence_problem(row, ratio))
    if unreadable:
        ctx.note(
            "sequence-near-limit",
            "not-run",
            f"{len(unreadable)} sequences are not readable by this role (for example "
            f"{unreadable[0]}): GRANT SELECT ON ALL SEQUENCES IN SCHEMA <schema> TO <role>, "
            "or GRANT pg_read_all_data TO <role>.",
        )
    return problems


_STATS_OF_COLUMN = "s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname"
_INTEGER_KEYS = (
    "SELECT n.nspname AS schema, c.relname AS table, " + _TABLE_NAME + " AS table_name, "
    "a.attname::text AS column_name, quote_ident(a.attname) AS quoted, "
    "format_type(a.atttypid, NULL) AS column_type, "
    "has_column_privilege(c.oid, a.attnum, 'SELECT') AS readable, "
    "EXISTS (SELECT 1 FROM pg_stats s WHERE " + _STATS_OF_COLUMN + ") AS analyzed, "
    "(SELECT max(v) FROM pg_stats s, unnest(coalesce(s.histogram_bounds::text::bigint[], '{}') "
    "|| coalesce(s.most_common_vals::text::bigint[], '{}')) v WHERE " + _STATS_OF_COLUMN + ") "
    "AS estimated "
    "FROM pg_attribute a " + _RELATION.format(oid="a.attrelid") + "WHERE a.atttypid IN "
    "('int2'::regtype, 'int4'::regtype) AND a.attnum > 0 "
    "AND NOT a.attisdropped AND " + _PLAIN_TABLE + USER_RELATION + " "
    "AND EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid "
    "AND k.contype IN ('p', 'u') AND a.attnum = ANY (k.conkey)) "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.conrelid = c.oid "
    "AND f.contype = 'f' AND a.attnum = ANY (f.conkey)) "
    "AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum "
    "AND i.indpred IS NULL AND i.indisvalid) "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
    "AND s.relkind = 'S' WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid "
    "AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass "
    "AND d.deptype IN ('a', 'i')) ORDER BY 3, 4"
)
"""Primary and unique integer keys with no sequence behind them (the sequence check reads
those) that are not foreign keys (their values are the referenced key's), with the largest
value the column's statistics saw, if it has been analyzed."""


def _probe(ctx: Context, row: RowMapping) -> int | None:
    """``max()`` of a key never analyzed, in a savepoint rolled back at once to drop its locks.

    ``None`` when the table is locked or the probe times out: that table alone is skipped.
    """
    savepoint = ctx.connection.begin_nested()
    try:
        largest = ctx.connection.scalar(
            select(func.max(column(row["column_name"]))).select_from(
                table(row["table"], schema=row["schema"])
            )
        )
    except DBAPIError as exc:
        savepoint.rollback()
        if isinstance(exc.orig, LockNotAvailable | QueryCanceled):
            return None
        raise
    savepoint.rollback()  # the probe wrote nothing; rolling back releases its ACCESS SHARE locks
    return int(largest or 0)


def integer_key_near_limit(ctx: Context) -> list[Problem]:
    """Integer keys (no sequence, no foreign key) whose largest value nears the type's end.

    The largest value comes from the column's statistics (an estimate: the largest value the
    last ANALYZE saw); only keys of tables never analyzed are probed, one at a time.
    """
    problems, unreadable, skipped = [], [], []
    for row in ctx.rows(_INTEGER_KEYS):
        if not row["readable"]:
            unreadable.append(row["table_name"])
            continue
        estimated = bool(row["analyzed"])
        value = int(row["estimated"] or 0) if estimated else _probe(ctx, row)
        if value is None:
            skipped.append(row["table_name"])
            continue
        ratio = abs(value) / TYPE_MAX[row["column_type"]]
        if ratio >= ctx.thresholds.integer_key_max_ratio:
            problems.append(_integer_key_problem(row, value, ratio, estimated=estimated))
    if unreadable:
        ctx.note(
            "integer-key-near-limit",
            "not-run",
            f"{len(unreadable)} key columns are not readable by this role (for example in "
            f"{unreadable[0]}): GRANT pg_read_all_data TO <role> to check them.",
        )
    if skipped:
        ctx.note(
            "integer-key-near-limit",
            "not-run",
            f"{len(skipped)} key columns were skipped (for example in {skipped[0]}): their table "
            f"was locked longer than lock_timeout_ms = {ctx.thresholds.lock_timeout_ms} (DDL was "
            "running) or the probe ran longer than statement_timeout_ms = "
            f"{ctx.thresholds.statement_timeout_ms}. Fix: run the doctor again later.",
        )
    return problems


def _integer_key_problem(
    row: RowMapping, largest: int, ratio: float, *, estimated: bool
) -> Problem:
    where = f"{row['table_name']}.{row['quoted']}"
    source = " (by its statistics: the largest value the last ANALYZE saw)" if estimated else ""
    return Problem(
        object=where,
        message=(
            f"key column {where} ({row['column_type']}) already holds {largest:,}{source}, "
            f"{ratio:.0%} of its type's range: new keys will soon not fit."
        ),
        evidence={
            "largest": largest,
            "limit": TYPE_MAX[row["column_type"]],
            "used_ratio": round(ratio, 4),
            "estimated": estimated,
        },
        fix=(
            f"ALTER TABLE {row['table_name']} ALTER COLUMN {row['quoted']} TYPE "
            "bigint;  -- rewrites the table under an ACCESS EXCLUSIVE lock (and the columns "
            "referencing it need the same): on a large table add a bigint column, backfill it "
            "in batches and swap"
        ),
    )


_TENANT_TABLES = (
    "SELECT n.nspname AS schema, c.relname AS table, " + _TABLE_NAME + " AS table_name, "
    "c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced, "
    "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = :policy) "
    "AS has_policy FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = :column AND NOT a.attisdropped "
    "WHERE c.relkind IN ('r', 'p') AND " + USER_RELATION + " ORDER BY 3"
)


def tenant_table_without_rls(ctx: Context) -> list[Problem]:
    """Tables with a ``tenant_id`` lacking row-level security enabled, forced, or the policy.

    Partitions count too: a query that names a partition uses the partition's own policies.
    """
    problems = []
    for row in ctx.rows(_TENANT_TABLES, policy=POLICY_NAME, column=TENANT_COLUMN):
        if row["enabled"] and row["forced"] and row["has_policy"]:
            continue
        model = Table(row["table"], MetaData(), schema=row["schema"])
        fixes = []
        if not (row["enabled"] and row["forced"]):
            fixes.append(tenant_row_security(model).create_sql().as_string() + ";")
        if not row["has_policy"]:
            fixes.append(tenant_policy(model).create_sql().as_string() + ";")
        missing = [
            label
            for label, present in (
                ("ENABLE ROW LEVEL SECURITY", row["enabled"]),
                ("FORCE ROW LEVEL SECURITY", row["forced"]),
                (f"the policy {POLICY_NAME}", row["has_policy"]),
            )
            if not present
        ]
        problems.append(
            Problem(
                object=row["table_name"],
                message=(
                    f"tenant table {row['table_name']} lacks {', '.join(missing)}: raw SQL "
                    "sees and writes every tenant's rows."
                ),
                evidence={
                    "rls_enabled": row["enabled"],
                    "rls_forced": row["forced"],
                    "policy": row["has_policy"],
                },
                fix=" ".join(fixes),
            )
        )
    return problems


SCHEMA_CHECKS = (
    Check("fk-without-index", "schema", "error", "Foreign keys without an index", fk_without_index),
    Check("duplicate-index", "schema", "warning", "Duplicate and prefix indexes", duplicate_index),
    Check("unused-index", "schema", "warning", "Unused indexes", unused_index),
    Check("invalid-index", "schema", "error", "INVALID indexes", invalid_index),
    Check(
        "invalid-constraint", "schema", "warning", "Constraints not validated", invalid_constraint
    ),
    Check("no-primary-key", "schema", "error", "Tables without a primary key", no_primary_key),
    Check("naive-timestamp", "schema", "warning", "timestamp without time zone", naive_timestamp),
    Check(
        "sequence-near-limit",
        "schema",
        "error",
        "Sequences and identities near their limit",
        sequence_near_limit,
    ),
    Check(
        "integer-key-near-limit",
        "schema",
        "error",
        "Integer keys near their limit",
        integer_key_near_limit,
    ),
    Check(
        "tenant-table-without-rls",
        "schema",
        "error",
        "Tenant tables without row-level security",
        tenant_table_without_rls,
    ),
)
