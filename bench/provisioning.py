"""How fast pgkeel provides databases: a throwaway cluster, and per-module template copies."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import URL

from bench._schema import TABLES, fifty_table_schema
from pgkeel.database import conninfo, find_binaries, provide_server
from pgkeel.database.osuser import server_user
from pgkeel.database.process import TMPDIR_ENV, free_port, scratch_root
from pgkeel.testing.databases import create_database, drop_database

TITLE = "Provisioning: first query on a throwaway cluster; template copy vs create_all"
RUNS = 7  # sized so that `make bench` as a whole stays under 10 minutes


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _first_query() -> tuple[float, float]:
    """Seconds from nothing to the first query's answer, and to everything removed again."""
    started = time.perf_counter()
    with provide_server({}) as server, psycopg.connect(conninfo(server.url)) as connection:
        connection.execute("select 1").fetchone()
        answered = time.perf_counter() - started
    return answered, time.perf_counter() - started


def _bare_initdb_and_start() -> None:
    """Baseline: what a shell script does by hand (initdb, pg_ctl start -w, psql), no pgkeel.

    It uses the same scratch directory as pgkeel (``/dev/shm`` when roomy), so the ratio shows
    pgkeel's own overhead, not the file system's.
    """
    binaries = find_binaries([])
    assert binaries is not None
    user = server_user()
    with tempfile.TemporaryDirectory(dir=scratch_root()) as raw:
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


def _build_template(server: URL, metadata: MetaData) -> None:
    engine = create_engine(create_database(server, "bench_template"))
    metadata.create_all(engine)
    engine.dispose()


def _copy(server: URL, name: str) -> float:
    seconds = _timed(lambda: create_database(server, name, template="bench_template"))
    drop_database(server, name)
    return seconds


def _create_all(server: URL, name: str, metadata: MetaData) -> float:
    def build() -> None:
        engine = create_engine(create_database(server, name))
        metadata.create_all(engine)
        engine.dispose()

    seconds = _timed(build)
    drop_database(server, name)
    return seconds


def _template_vs_create_all() -> tuple[list[float], list[float]]:
    """Seconds of each template copy and of each CREATE DATABASE + create_all, interleaved."""
    metadata = fifty_table_schema()
    with provide_server({}) as server:
        _build_template(server.url, metadata)
        copies, creates = [], []
        for run in range(RUNS):
            copies.append(_copy(server.url, f"bench_copy_{run}"))
            creates.append(_create_all(server.url, f"bench_create_{run}", metadata))
    return copies, creates


@contextmanager
def _scratch_in(directory: Path) -> Iterator[None]:
    previous = os.environ.get(TMPDIR_ENV)
    os.environ[TMPDIR_ENV] = str(directory)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[TMPDIR_ENV]
        else:
            os.environ[TMPDIR_ENV] = previous


def _copy_on_disk() -> list[float]:
    """Seconds of each same template copy with the cluster in the temporary directory."""
    disk = Path(tempfile.gettempdir())
    if scratch_root() == disk:
        return []
    with _scratch_in(disk), provide_server({}) as server:
        _build_template(server.url, fifty_table_schema())
        return [_copy(server.url, f"bench_disk_{run}") for run in range(RUNS)]


def _ms(seconds: list[float]) -> str:
    """Median and range in milliseconds."""
    low, high = min(seconds) * 1000, max(seconds) * 1000
    return f"{statistics.median(seconds) * 1000:.0f} ms ({low:.0f}-{high:.0f})"


def run() -> str:
    """Run both measurements and return the Markdown section."""
    answered, cycles = zip(*(_first_query() for _ in range(RUNS)), strict=True)
    bare_median = statistics.median(_timed(_bare_initdb_and_start) for _ in range(RUNS))
    first, cycle = statistics.median(answered), statistics.median(cycles)
    copies, creates = _template_vs_create_all()
    copy, create = statistics.median(copies), statistics.median(creates)
    disk_copies = _copy_on_disk()
    rows = [
        (
            "nothing -> first query answered: `provide_server()` (initdb, start, connect)",
            f"{first:.2f} s",
            "",
            f"<= 2 s: {_verdict(first <= 2)}",
        ),
        (
            "the same, plus stopping the server and removing its directory",
            f"{cycle:.2f} s",
            f"{cycle / bare_median:.2f}x of the baseline",
            "",
        ),
        (
            "baseline: bare `initdb`, `pg_ctl start -w`, connect, stop (same scratch directory)",
            f"{bare_median:.2f} s",
            "1.00x",
            "",
        ),
        (
            f"fresh module database: `CREATE DATABASE ... TEMPLATE` ({TABLES} tables)",
            _ms(copies),
            f"{create / copy:.1f}x faster",
            f">= 5x: {_verdict(create / copy >= 5)}",
        ),
        (
            f"baseline: `CREATE DATABASE` + `create_all` ({TABLES} tables)",
            _ms(creates),
            "1.00x",
            "",
        ),
    ]
    if disk_copies:
        rows.append(
            (
                f"for comparison: the same copy, cluster in `{tempfile.gettempdir()}` (disk)",
                _ms(disk_copies),
                f"{statistics.median(disk_copies) / copy:.1f}x slower than in `{scratch_root()}`",
                "",
            )
        )
    table = ["| measurement | median (range) | ratio | goal |", "|---|---|---|---|"]
    table.extend("| " + " | ".join(row) + " |" for row in rows)
    where = scratch_root()
    return (
        f"Median of {RUNS} runs each; throwaway clusters in `{where}`, PostgreSQL "
        f"{_major()}. On a disk the figures swing with the machine's other work (see the "
        "ranges); in memory they stay steady.\n\n" + "\n".join(table)
    )


def _major() -> int:
    binaries = find_binaries([])
    return binaries.major if binaries else 0


def _verdict(met: bool) -> str:  # noqa: FBT001
    return "met" if met else "NOT met"
