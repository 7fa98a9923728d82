"""How long pgkeel doctor takes on a large schema: 1,000 tables and 3,000 indexes.

Each table has a uuid primary key, a foreign key to the previous table with its index, a name
with an index, a timestamptz and 20 rows; the database also has statistics for its statements
(pg_stat_statements preloaded, a few hundred distinct statements run). The measured time is one
whole ``diagnose`` call (connecting included, every check, sizes and top queries), on a
throwaway cluster; the median and the slowest of the runs are reported.
"""

from __future__ import annotations

import os
import statistics
import time

import psycopg

from pgkeel.database import conninfo, find_binaries, throwaway_cluster
from pgkeel.doctor import Thresholds, diagnose
from pgkeel.testing.databases import create_database

TITLE = "Doctor: a whole run on 1,000 tables and 3,000 indexes"
TABLES = 1_000
ROWS = 20
RUNS = 7
TARGET_S = 2.0
SETTINGS = {"shared_preload_libraries": "pg_stat_statements"}


def _table_ddl(number: int) -> list[str]:
    name = f"t{number:04d}"
    parent = f"t{number - 1:04d}" if number else None
    reference = f"REFERENCES {parent}" if parent else ""
    return [
        (
            f"CREATE TABLE {name} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
            f"parent_id uuid {reference}, name text NOT NULL, created_at timestamptz NOT NULL "
            "DEFAULT now())"
        ),
        f"CREATE INDEX {name}_parent_id ON {name} (parent_id)",
        f"CREATE INDEX {name}_name ON {name} (name)",
        f"INSERT INTO {name} (name) SELECT 'n' || g FROM generate_series(1, {ROWS}) g",
    ]


def build(url: str) -> None:
    """Create the schema, fill it, vacuum and analyze it, run statements for the statistics."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION pg_stat_statements")
        with connection.transaction():
            for number in range(TABLES):
                for statement in _table_ddl(number):
                    connection.execute(statement)  # type: ignore[arg-type]
        connection.execute("VACUUM (ANALYZE)")
        for number in range(0, TABLES, 3):
            connection.execute(f"SELECT count(*) FROM t{number:04d} WHERE name = 'n1'")  # type: ignore[arg-type]


def measure(url: str, info: str) -> tuple[list[float], int, int]:
    """The duration of each run, and the numbers of findings and indexes seen."""
    times = []
    report = None
    for _ in range(RUNS):
        started = time.perf_counter()
        report = diagnose(url, thresholds=Thresholds())
        times.append(time.perf_counter() - started)
    assert report is not None
    with psycopg.connect(info) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
        ).fetchone()
    assert row is not None
    return times, len(report.findings), int(row[0])


def run() -> str:
    """Build the schema on a throwaway cluster, time the doctor, return the Markdown section."""
    binaries = find_binaries([])
    if binaries is None:
        raise SystemExit("the doctor benchmark needs PostgreSQL binaries on this machine")
    load = os.getloadavg()[0]
    with throwaway_cluster(binaries, SETTINGS) as cluster:
        url = create_database(cluster.url(), "bench_doctor")
        info = conninfo(url)
        build(info)
        times, findings, indexes = measure(url.render_as_string(hide_password=False), info)
    median, slowest = statistics.median(times), max(times)
    verdict = "met" if slowest < TARGET_S else "**not met**"
    return "\n".join(
        [
            f"| tables | indexes | runs | median | slowest | target (< {TARGET_S:.0f} s) |",
            "|---|---|---|---|---|---|",
            f"| {TABLES:,} | {indexes:,} | {RUNS} | {median:.2f} s | {slowest:.2f} s | {verdict} |",
            "",
            (
                "Each run is one `diagnose(url)`: a new connection, all the checks, the sizes "
                f"and the top queries ({findings} findings on this vacuumed, analyzed schema). "
                f"Load average before the run: {load:.1f} on 2 cores shared with other work."
            ),
        ]
    )
