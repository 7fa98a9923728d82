"""How fast pgkeel provides databases: a throwaway cluster, and per-module template copies."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, create_engine

from pgkeel.database import conninfo, find_binaries, provide_server
from pgkeel.database.cluster import free_port
from pgkeel.database.osuser import server_user
from pgkeel.testing.databases import create_database, drop_database

TITLE = "Provisioning: first query on a throwaway cluster; template copy vs create_all"
RUNS = 7
TABLES = 50


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _first_query() -> None:
    with provide_server({}) as server, psycopg.connect(conninfo(server.url)) as connection:
        connection.execute("select 1")


def _bare_initdb_and_start() -> None:
    """Baseline: what a shell script does by hand (initdb, pg_ctl start -w, psql), no pgkeel."""
    binaries = find_binaries([])
    assert binaries is not None
    user = server_user()
    with tempfile.TemporaryDirectory() as raw:
        directory = Path(raw)
        user.give(directory)
        run = user.subprocess_options()
        data, port = str(directory / "data"), free_port()
        subprocess.run(
            [binaries.tool("initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
            **run,
        )
        subprocess.run(
            [
                binaries.tool("pg_ctl"),
                "-D",
                data,
                "-w",
                "-l",
                str(directory / "log"),
                "-o",
                f"-p {port} -k {directory} -c fsync=off",
                "start",
            ],
            check=True,
            capture_output=True,
            **run,
        )
        try:
            psycopg.connect(host="127.0.0.1", port=port, user="postgres").close()
        finally:
            subprocess.run(
                [binaries.tool("pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                check=True,
                capture_output=True,
                **run,
            )


def fifty_table_schema() -> MetaData:
    """50 tables, each with a foreign key to the previous one, an index and a unique column."""
    metadata = MetaData()
    for number in range(TABLES):
        columns = [
            Column("id", Integer, primary_key=True),
            Column("name", String(100), index=True),
            Column("code", String(20), unique=True),
        ]
        if number:
            columns.append(Column("parent_id", ForeignKey(f"t{number - 1}.id"), index=True))
        Table(f"t{number}", metadata, *columns)
    return metadata


def _template_vs_create_all() -> tuple[float, float]:
    metadata = fifty_table_schema()
    with provide_server({}) as server:
        template = create_database(server.url, "bench_template")
        engine = create_engine(template)
        metadata.create_all(engine)
        engine.dispose()
        copies, creates = [], []
        for run in range(RUNS):
            name = f"bench_copy_{run}"
            copies.append(
                _timed(lambda n=name: create_database(server.url, n, template="bench_template"))
            )
            drop_database(server.url, name)
            name = f"bench_create_{run}"

            def create_all(n: str = name) -> None:
                engine = create_engine(create_database(server.url, n))
                metadata.create_all(engine)
                engine.dispose()

            creates.append(_timed(create_all))
            drop_database(server.url, name)
    return statistics.median(copies), statistics.median(creates)


def run() -> str:
    """Run both measurements and return the Markdown section."""
    pgkeel_times = [_timed(_first_query) for _ in range(RUNS)]
    bare_times = [_timed(_bare_initdb_and_start) for _ in range(RUNS)]
    pgkeel_median, bare_median = statistics.median(pgkeel_times), statistics.median(bare_times)
    copy, create = _template_vs_create_all()
    ratio_first = pgkeel_median / bare_median
    rows = [
        (
            "nothing -> first query: `provide_server()` (initdb, start, connect, stop, remove)",
            f"{pgkeel_median:.2f} s",
            f"{ratio_first:.2f}x of the baseline",
            f"<= 2 s: {_verdict(pgkeel_median <= 2)}",
        ),
        (
            "baseline: bare `initdb`, `pg_ctl start -w`, connect, stop",
            f"{bare_median:.2f} s",
            "1.00x",
            "",
        ),
        (
            f"fresh module database: `CREATE DATABASE ... TEMPLATE` ({TABLES} tables)",
            f"{copy * 1000:.0f} ms",
            f"{create / copy:.1f}x faster",
            f">= 5x: {_verdict(create / copy >= 5)}",
        ),
        (
            f"baseline: `CREATE DATABASE` + `create_all` ({TABLES} tables)",
            f"{create * 1000:.0f} ms",
            "1.00x",
            "",
        ),
    ]
    table = ["| measurement | median | ratio | goal |", "|---|---|---|---|"]
    table.extend("| " + " | ".join(row) + " |" for row in rows)
    return f"Median of {RUNS} runs each.\n\n" + "\n".join(table)


def _verdict(met: bool) -> str:  # noqa: FBT001
    return "met" if met else "NOT met"
