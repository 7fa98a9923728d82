"""Primary keys compared: 1,000,000 inserted rows keyed by UUIDv7, UUIDv4 and bigint identity.

The keys are made where an application makes them: UUIDv7 by pgkeel's ``new_id`` and UUIDv4 by
``uuid.uuid4`` in Python (their cost is in the timing), bigint by the server's identity. Rows go
in as multi-row ``INSERT ... SELECT FROM unnest(...)`` statements of ``BATCH`` rows, one
transaction each, so the server's work (above all the primary-key B-tree) dominates.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgkeel.database import conninfo, provide_server
from pgkeel.mixins import new_id
from pgkeel.testing.databases import create_database

TITLE = "UUIDv7 vs UUIDv4 vs bigint primary keys: 1,000,000 inserted rows"
ROWS = 1_000_000
BATCH = 10_000
PAYLOAD = "x" * 40


@dataclass(frozen=True)
class KeyKind:
    """One way of keying the table."""

    label: str
    table: str
    column_sql: str
    make_keys: Callable[[int], list[uuid.UUID]] | None  # None: the server makes them


KINDS = (
    KeyKind(
        "UUIDv7 (pgkeel `new_id`)",
        "keys_uuid7",
        "id uuid PRIMARY KEY",
        lambda n: [new_id() for _ in range(n)],
    ),
    KeyKind(
        "UUIDv4 (`uuid.uuid4`)",
        "keys_uuid4",
        "id uuid PRIMARY KEY",
        lambda n: [uuid.uuid4() for _ in range(n)],
    ),
    KeyKind(
        "bigint identity", "keys_bigint", "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", None
    ),
)


@dataclass(frozen=True)
class Result:
    """What one kind of key cost."""

    seconds: float
    key_seconds: float
    index_bytes: int
    table_bytes: int
    wal_bytes: int


Connection = psycopg.Connection[tuple[object, ...]]


def _create(connection: Connection, kind: KeyKind) -> None:
    connection.execute(
        sql.SQL(
            "CREATE TABLE {} ({}, n integer NOT NULL, payload text NOT NULL) "
            "WITH (autovacuum_enabled = off)"
        ).format(sql.Identifier(kind.table), sql.SQL(kind.column_sql))
    )
    connection.commit()


def _keys(kind: KeyKind) -> tuple[list[uuid.UUID] | None, float]:
    """The next batch's keys as the application makes them, and the seconds that took."""
    if kind.make_keys is None:
        return None, 0.0
    started = time.perf_counter()
    keys = kind.make_keys(BATCH)
    return keys, time.perf_counter() - started


def _insert_batch(
    connection: Connection, kind: KeyKind, keys: list[uuid.UUID] | None, start: int
) -> None:
    """One multi-row INSERT of ``BATCH`` rows, parameters in binary, then COMMIT."""
    numbers = list(range(start, start + BATCH))
    payloads = [PAYLOAD] * BATCH
    table = sql.Identifier(kind.table)
    if keys is None:
        statement = sql.SQL(
            "INSERT INTO {} (n, payload) SELECT * FROM unnest(%b::integer[], %b::text[])"
        ).format(table)
        connection.execute(statement, (numbers, payloads))
    else:
        statement = sql.SQL(
            "INSERT INTO {} (id, n, payload) "
            "SELECT * FROM unnest(%b::uuid[], %b::integer[], %b::text[])"
        ).format(table)
        connection.execute(statement, (keys, numbers, payloads))
    connection.commit()


def _scalar(connection: Connection, query: str, *params: object) -> str:
    row = connection.execute(query, params or None).fetchone()
    connection.commit()
    assert row is not None
    return str(row[0])


def _wal_since(connection: Connection, lsn: str) -> int:
    return int(_scalar(connection, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", lsn))


def _size(connection: Connection, relation: str) -> int:
    return int(_scalar(connection, "SELECT pg_relation_size(%s::regclass)", relation))


def measure(url: str) -> dict[str, Result]:
    """Fill the three tables batch by batch in turn, so a busy machine slows all of them alike."""
    tables = [kind.table for kind in KINDS]
    seconds, making, wal = (
        dict.fromkeys(tables, 0.0),
        dict.fromkeys(tables, 0.0),
        dict.fromkeys(tables, 0),
    )
    with psycopg.connect(url) as connection:
        for kind in KINDS:
            _create(connection, kind)
        connection.execute("CHECKPOINT")
        for start in range(0, ROWS, BATCH):
            for kind in KINDS:
                keys, made_in = _keys(kind)
                lsn = _scalar(connection, "SELECT pg_current_wal_insert_lsn()")
                started = time.perf_counter()
                _insert_batch(connection, kind, keys, start)
                seconds[kind.table] += time.perf_counter() - started
                making[kind.table] += made_in
                wal[kind.table] += _wal_since(connection, lsn)
        return {
            kind.table: Result(
                seconds[kind.table],
                making[kind.table],
                _size(connection, f"{kind.table}_pkey"),
                _size(connection, kind.table),
                wal[kind.table],
            )
            for kind in KINDS
        }


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def run() -> str:
    """Run the comparison on a throwaway cluster and return the Markdown section."""
    load_before = os.getloadavg()[0]
    with provide_server({}) as server:
        url = create_database(server.url, "bench_uuid_keys")
        results = measure(conninfo(url))
    v7, v4, bigint = (results[kind.table] for kind in KINDS)
    index_ratio = v7.index_bytes / v4.index_bytes
    speed_ratio = v7.seconds / bigint.seconds
    header = [
        "| key | INSERT rows/s | vs bigint | + making keys in Python | PK index | table | WAL |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = []
    for kind in KINDS:
        result = results[kind.table]
        total = result.seconds + result.key_seconds
        making = (
            f"{result.key_seconds / ROWS * 1e6:.2f} µs/key: {ROWS / total:,.0f} rows/s, "
            f"{total / bigint.seconds:.2f}x"
            if kind.make_keys
            else "(made by the server)"
        )
        cells = [
            kind.label,
            f"{ROWS / result.seconds:,.0f}",
            f"{result.seconds / bigint.seconds:.2f}x",
            making,
            _mib(result.index_bytes),
            _mib(result.table_bytes),
            _mib(result.wal_bytes),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    goals = (
        f"Goals: UUIDv7 primary-key index <= 0.85x the UUIDv4 one: {index_ratio:.2f}x, "
        f"{_met(index_ratio <= 0.85)}. UUIDv7 INSERT throughput within 1.2x of bigint: "
        f"{speed_ratio:.2f}x, {_met(speed_ratio <= 1.2)}."
    )
    notes = (
        f"{ROWS:,} rows per table (`id`, an integer, a {len(PAYLOAD)}-character text) in "
        f"{ROWS // BATCH} transactions of one multi-row `INSERT ... SELECT FROM unnest(...)` "
        f"of {BATCH:,} rows, parameters sent in binary. The three tables are filled in turn, "
        "batch by batch (a busy machine slows all three alike), with autovacuum off on them. "
        "*INSERT rows/s* times the statements and commits: what the key type costs the "
        "database. The keys are made before each batch, as an application makes them, and "
        "timed apart (*making keys in Python*); in an ORM insert, where a row costs tens of "
        "µs of Python, that share is small. WAL is the sum over batches of "
        "`pg_current_wal_insert_lsn()` after minus before (the insert position: with "
        "asynchronous commit, `pg_current_wal_lsn()`, the write position, lags behind and "
        "would credit one table's WAL to the next). The throwaway cluster runs with "
        "`wal_level=minimal`, `fsync=off`, `synchronous_commit=off` and "
        "`full_page_writes=off`: the WAL figures leave out the full-page images a production "
        "server writes after each checkpoint (more of them for random UUIDv4 keys, which "
        "touch more distinct pages), and nothing waits for a disk."
    )
    load = f"Load average (1 min) before and after: {load_before:.1f}, {os.getloadavg()[0]:.1f}."
    return f"{notes} {load}\n\n" + "\n".join(header + rows) + "\n\n" + goals


def _met(met: bool) -> str:  # noqa: FBT001
    return "met" if met else "NOT met"
