"""Checks on sessions and replication: long queries and transactions, locks, connections, slots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgkeel.doctor.context import Check, Problem, ident

if TYPE_CHECKING:
    from sqlalchemy.engine import RowMapping

    from pgkeel.doctor.context import Context

_SESSIONS = (
    "SELECT a.pid, a.usename::text AS username, a.application_name, a.state, "
    "left(a.query, 300) AS query, "
    "extract(epoch FROM now() - a.query_start) AS query_s, "
    "extract(epoch FROM now() - a.xact_start) AS xact_s, "
    "extract(epoch FROM now() - a.state_change) AS state_s "
    "FROM pg_stat_activity a WHERE a.backend_type = 'client backend' "
    "AND a.datname = current_database() AND a.pid <> pg_backend_pid() ORDER BY a.pid"
)


def _session_problem(row: RowMapping, message: str, seconds: float, fix: str) -> Problem:
    return Problem(
        object=f"pid {row['pid']}",
        message=message,
        evidence={
            "pid": row["pid"],
            "seconds": round(seconds, 1),
            "user": row["username"],
            "application": row["application_name"],
            "state": row["state"],
            "query": row["query"],
        },
        fix=fix,
    )


def long_running_query(ctx: Context) -> list[Problem]:
    """Statements running longer than the threshold."""
    limit = ctx.thresholds.long_query_s
    return [
        _session_problem(
            row,
            f"a query of {row['username']} has been running for {row['query_s']:.0f} s.",
            float(row["query_s"]),
            f"SELECT pg_cancel_backend({row['pid']});  -- and setting statement_timeout for "
            f"that role (ALTER ROLE {ident(row['username'])} SET statement_timeout = '30s')",
        )
        for row in ctx.rows(_SESSIONS)
        if row["state"] == "active" and row["query_s"] is not None and row["query_s"] >= limit
    ]


def long_transaction(ctx: Context) -> list[Problem]:
    """Transactions open longer than the threshold: they hold back vacuum everywhere."""
    limit = ctx.thresholds.long_transaction_s
    return [
        _session_problem(
            row,
            f"a transaction of {row['username']} has been open for {row['xact_s']:.0f} s: "
            "vacuum cannot remove rows deleted since it began.",
            float(row["xact_s"]),
            f"SELECT pg_terminate_backend({row['pid']});  -- after checking what it does; keep "
            "transactions short (no network calls inside them)",
        )
        for row in ctx.rows(_SESSIONS)
        if row["xact_s"] is not None and row["xact_s"] >= limit
    ]


def idle_in_transaction(ctx: Context) -> list[Problem]:
    """Sessions idle inside an open transaction for longer than the threshold."""
    limit = ctx.thresholds.idle_in_transaction_s
    return [
        _session_problem(
            row,
            f"a session of {row['username']} has been idle in a transaction for "
            f"{row['state_s']:.0f} s, holding its locks and its snapshot.",
            float(row["state_s"]),
            f"SELECT pg_terminate_backend({row['pid']});  -- and setting "
            "idle_in_transaction_session_timeout (for example '60s') for the application role",
        )
        for row in ctx.rows(_SESSIONS)
        if (row["state"] or "").startswith("idle in transaction") and row["state_s"] >= limit
    ]


_BLOCKED = (
    "SELECT a.pid, a.usename::text AS username, a.application_name, a.state, "
    "left(a.query, 300) AS query, pg_blocking_pids(a.pid) AS blockers, "
    "extract(epoch FROM now() - coalesce(l.since, a.state_change)) AS wait_s "
    "FROM pg_stat_activity a LEFT JOIN LATERAL (SELECT min(waitstart) AS since FROM pg_locks "
    "WHERE pid = a.pid AND NOT granted) l ON true "
    "WHERE a.datname = current_database() AND a.wait_event_type = 'Lock' "
    "AND cardinality(pg_blocking_pids(a.pid)) > 0 ORDER BY a.pid"
)


def blocked_query(ctx: Context) -> list[Problem]:
    """Sessions waiting for a lock longer than the threshold, with the sessions blocking them."""
    problems = []
    for row in ctx.rows(_BLOCKED):
        if row["wait_s"] < ctx.thresholds.blocked_s:
            continue
        blockers = ", ".join(str(pid) for pid in row["blockers"])
        problem = _session_problem(
            row,
            f"session {row['pid']} of {row['username']} has waited {row['wait_s']:.0f} s for a "
            f"lock held by {blockers}.",
            float(row["wait_s"]),
            f"SELECT pg_terminate_backend({row['blockers'][0]});  -- after checking what it "
            "runs; and setting lock_timeout (for example '5s') for migrations and DDL",
        )
        problem.evidence["blocked_by"] = blockers
        problems.append(problem)
    return problems


_CONNECTIONS = (
    "SELECT count(*) AS total, count(*) FILTER (WHERE state = 'active') AS active, "
    "count(*) FILTER (WHERE state = 'idle') AS idle, "
    "count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction, "
    "current_setting('max_connections')::int AS max_connections, "
    "current_setting('superuser_reserved_connections')::int AS reserved "
    "FROM pg_stat_activity WHERE backend_type = 'client backend'"
)


def connections(ctx: Context) -> list[Problem]:
    """Client connections past the threshold share of the connections the server allows."""
    row = ctx.rows(_CONNECTIONS)[0]
    usable = max(int(row["max_connections"]) - int(row["reserved"]), 1)
    ratio = int(row["total"]) / usable
    if ratio < ctx.thresholds.connections_ratio:
        return []
    return [
        Problem(
            object="server",
            message=(
                f"{row['total']} client connections of the {usable} the server allows "
                f"({ratio:.0%}): new connections will soon be refused."
            ),
            evidence={**dict(row), "used_ratio": round(ratio, 4)},
            fix=(
                "put PgBouncer (transaction pooling) in front of the server, or lower the pool "
                "sizes of the services; raise the setting max_connections only with memory to "
                "spare (each connection is a process)"
            ),
        )
    ]


_SLOTS = (
    "SELECT slot_name::text, slot_type, database::text, active, wal_status, "
    "CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL "
    "ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END AS retained_bytes "
    "FROM pg_replication_slots ORDER BY 1"
)


def inactive_replication_slot(ctx: Context) -> list[Problem]:
    """Replication slots no client uses: the server keeps all WAL since they stopped."""
    rows = ctx.rows(_SLOTS)
    if not rows:
        ctx.note("inactive-replication-slot", "not-applicable", "the server has no slots.")
    return [
        Problem(
            object=f"slot {row['slot_name']}",
            message=(
                f"{row['slot_type']} replication slot {row['slot_name']} is inactive: the "
                "server keeps every WAL file since its consumer stopped, until the disk fills."
            ),
            evidence={
                "slot_type": row["slot_type"],
                "database": row["database"],
                "retained_wal_bytes": row["retained_bytes"],
                "wal_status": row["wal_status"],
            },
            fix=(
                f"SELECT pg_drop_replication_slot('{row['slot_name']}');  -- if its consumer "
                "is gone for good; and setting max_slot_wal_keep_size to cap what a slot keeps"
            ),
        )
        for row in rows
        if not row["active"]
    ]


_REPLICAS = (
    "SELECT application_name, coalesce(client_addr::text, 'local') AS client, "
    "extract(epoch FROM replay_lag) AS lag_s, "
    "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes "
    "FROM pg_stat_replication ORDER BY 1"
)
_STANDBY_LAG = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
)


def replica_lag(ctx: Context) -> list[Problem]:
    """Replicas (or, on a replica, this server) behind the primary by more than the threshold."""
    limit = ctx.thresholds.replica_lag_s
    rows: list[dict[str, Any]]
    if ctx.value("SELECT pg_is_in_recovery()"):
        lag = ctx.value(_STANDBY_LAG)
        rows = [{"application_name": "this server", "client": "", "lag_s": lag, "lag_bytes": None}]
    else:
        rows = [dict(row) for row in ctx.rows(_REPLICAS)]
        if not rows:
            ctx.note("replica-lag", "not-applicable", "the server has no replicas.")
    return [
        Problem(
            object=f"replica {row['application_name']}",
            message=f"replica {row['application_name']} is {row['lag_s']:.0f} s behind.",
            evidence={"lag_s": round(float(row["lag_s"]), 1), "lag_bytes": row["lag_bytes"]},
            fix=(
                "check the replica's disk and CPU and the network; long queries on the replica "
                "with the setting hot_standby_feedback or max_standby_streaming_delay"
            ),
        )
        for row in rows
        if row["lag_s"] is not None and float(row["lag_s"]) >= limit
    ]


ACTIVITY_CHECKS = (
    Check("long-running-query", "health", "warning", "Long-running queries", long_running_query),
    Check("long-transaction", "health", "warning", "Long transactions", long_transaction),
    Check("idle-in-transaction", "health", "warning", "Idle in transaction", idle_in_transaction),
    Check("blocked-query", "health", "warning", "Blocked sessions", blocked_query),
    Check("connections", "health", "warning", "Connections", connections),
    Check(
        "inactive-replication-slot",
        "health",
        "warning",
        "Inactive replication slots",
        inactive_replication_slot,
    ),
    Check("replica-lag", "health", "warning", "Replica lag", replica_lag),
)
