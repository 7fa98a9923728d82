"""A pytest module of 20 tests on a 50-table schema: pgkeel.testing vs pytest-postgresql.

Each measurement is a real ``pytest`` process over a generated project (a ``conftest.py`` and one
test module), timed from start to exit: starting the server, building the schema once, the
tests, and the cleanup. The tests are the same text for every variant; a ``sql`` fixture of the
variant's ``conftest.py`` runs their statements. They share tables, so a row left over from an
earlier test fails a later one: each variant's isolation is checked, not assumed.

- pgkeel: ``pgkeel.testing`` with ``pgkeel_schema`` naming the schema; one database per module
  copied from the template, a transaction rolled back after each test (``db_session``).
- pytest-postgresql, default settings: its ``postgresql_proc`` with the schema loader (``load``)
  and its ``postgresql`` fixture, a database per test copied from the template; only the path of
  ``pg_ctl`` is given (its default names PostgreSQL 14's), and a ``--basetemp`` of its own in
  the temporary directory (on disk, where pytest puts it by default: a private one, because
  other pytest runs of the same user prune the numbered ones, data directory included).
- pytest-postgresql, tuned: the same, plus the durability settings of pgkeel's throwaway
  cluster as ``postgresql_postgres_options`` and pytest's ``--basetemp`` (where the data
  directory goes) in pgkeel's scratch directory (``/dev/shm`` when it has room).

Every process runs with plugin autoloading off and its own plugin named with ``-p``, so neither
pays for the other's import. PostgreSQL refuses to run as root, and pytest-postgresql starts
``pg_ctl`` as the user running pytest: under root its ``postgresql_exec`` is a small wrapper
that runs ``pg_ctl`` as pgkeel's unprivileged server user (``setpriv``) and lets that user into
pytest's temporary directories. pgkeel's plugin does that switch by itself.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench._envs import ROOT, current_python, has_peer, load, not_installed, paired_ratio, progress
from bench._schema import TABLES
from pgkeel.database import find_binaries
from pgkeel.database.cluster import THROWAWAY_SETTINGS
from pgkeel.database.osuser import server_user
from pgkeel.database.process import scratch_root

TITLE = (
    "Test fixtures: a pytest module of 20 tests on a 50-table schema, "
    "pgkeel.testing vs pytest-postgresql"
)
TESTS = 20
ROUNDS = 3  # sized so that `make bench` as a whole stays under 10 minutes
DEFAULT_ROUNDS = 1  # pytest-postgresql's default variant: the slowest by far, and its time is disk
TIMEOUT_S = 300
DURABILITY = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "max_wal_senders")
"""The settings of pgkeel's throwaway cluster that the tuned pytest-postgresql gets too."""

TEST_MODULE = f'''\
"""{TESTS} tests that each add a parent and a child row and count what the join sees."""

import pytest


@pytest.mark.parametrize("number", range({TESTS}))
def test_parent_and_child(sql, number):
    parent, child = f"t{{number % 2}}", f"t{{number % 2 + 1}}"
    insert = f"INSERT INTO {{parent}} (name, code) VALUES ('p', 'p{{number}}') RETURNING id"
    ((parent_id,),) = sql(insert)
    sql(
        f"INSERT INTO {{child}} (name, code, parent_id) "
        f"VALUES ('c', 'c{{number}}', {{parent_id}}) RETURNING id"
    )
    join = f"{{parent}} JOIN {{child}} ON {{child}}.parent_id = {{parent}}.id"
    joined = sql(f"SELECT count(*) FROM {{join}}")
    assert joined == [(1,)], "a row of an earlier test is still there"
'''

PGKEEL_CONFTEST = """\
import pytest


@pytest.fixture
def sql(db_session):
    connection = db_session.connection()
    return lambda statement: connection.exec_driver_sql(statement).fetchall()
"""

PYTEST_POSTGRESQL_CONFTEST = """\
import pytest
from pytest_postgresql import factories
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from bench._schema import METADATA


def load_schema(host, port, user, dbname, password, **_options):
    url = URL.create(
        "postgresql+psycopg", username=user, password=password, host=host, port=port,
        database=dbname,
    )
    engine = create_engine(url)
    METADATA.create_all(engine)
    engine.dispose()


postgresql_proc = factories.postgresql_proc(load=[load_schema])
postgresql = factories.postgresql("postgresql_proc")


@pytest.fixture
def sql(postgresql):
    return lambda statement: postgresql.execute(statement).fetchall()
"""

PEER_CANNOT = (
    "What pytest-postgresql does not express: a database that lives for a module with a "
    "transaction rolled back after each test (its `postgresql` fixture is function-scoped: "
    "every test gets a new database copied from the template, and drops it); SQLAlchemy "
    "engines and sessions (it hands out psycopg connections; the schema loader above is "
    "written by hand); finding the PostgreSQL binaries (`postgresql_exec` defaults to "
    "PostgreSQL 14's `pg_ctl` path) or falling back to another source; running as root (it "
    "starts `pg_ctl` as the user running pytest); a PgBouncer in front of the test database. "
    "Under root (as here and in CI) the bench gives pytest-postgresql a `postgresql_exec` "
    "wrapper that runs `pg_ctl` as pgkeel's unprivileged server user (`setpriv`) and lets that "
    "user into its temporary directory; pgkeel's plugin switches user by itself."
)


@dataclass(frozen=True)
class _Variant:
    """One way of running the generated test module."""

    label: str
    conftest: str
    arguments: tuple[str, ...]


def _tuned_options() -> str:
    return " ".join(f"-c {name}={THROWAWAY_SETTINGS[name]}" for name in DURABILITY)


def _variants(pg_ctl: str, basetemps: dict[str, Path]) -> dict[str, _Variant]:
    variants = {
        "pgkeel": _Variant(
            "pgkeel: `pgkeel.testing` (`db_session`, a database per module)",
            PGKEEL_CONFTEST,
            ("-p", "pgkeel.testing", "-o", "pgkeel_schema=bench._schema:METADATA"),
        ),
    }
    if not has_peer("pytest_postgresql"):
        return variants
    peer = ("-p", "pytest_postgresql.plugin", "-o", f"postgresql_exec={pg_ctl}")
    variants["default"] = _Variant(
        "pytest-postgresql, default settings (`postgresql`, a database per test; data "
        f"directory in `{basetemps['default'].parent}`)",
        PYTEST_POSTGRESQL_CONFTEST,
        (*peer, f"--basetemp={basetemps['default']}"),
    )
    variants["tuned"] = _Variant(
        "pytest-postgresql, tuned (the same, durability off, data directory in "
        f"`{basetemps['tuned'].parent}`)",
        PYTEST_POSTGRESQL_CONFTEST,
        (
            *peer,
            "-o",
            f"postgresql_postgres_options={_tuned_options()}",
            f"--basetemp={basetemps['tuned']}",
        ),
    )
    return variants


PG_CTL_AS_USER = """\
#!/bin/sh
# pg_ctl as {user}: PostgreSQL refuses root. initdb gets the directory it writes in, and the
# user may enter pytest's temporary directories above it.
set -e
if [ "$1" = initdb ]; then
    directory=$(dirname "$3")
    chown {uid}:{gid} "$directory"
    while [ "$directory" != / ]; do
        case "$(stat -c %A "$directory")" in *[xt]) ;; *) chmod o+x "$directory" ;; esac
        directory=$(dirname "$directory")
    done
fi
exec setpriv --reuid={uid} --regid={gid} --clear-groups {pg_ctl} "$@"
"""


def _pg_ctl_for_peer(pg_ctl: str, directory: Path) -> str:
    """``pg_ctl`` as pytest-postgresql may run it: under root, a wrapper that switches user."""
    if os.geteuid() != 0:
        return pg_ctl
    user = server_user()
    wrapper = directory / "pg_ctl-as-server-user"
    wrapper.write_text(
        PG_CTL_AS_USER.format(user=user.name, uid=user.uid, gid=user.gid, pg_ctl=pg_ctl)
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def _environment() -> dict[str, str]:
    """The pytest processes' environment: only the plugin named with ``-p``, bench importable."""
    return {
        **os.environ,
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def _project(name: str, variant: _Variant) -> Iterator[Path]:
    """A directory holding the variant's conftest.py and the test module, readable by all."""
    directory = Path(tempfile.mkdtemp(prefix=f"pgkeel-bench-fixtures-{name}-"))
    try:
        (directory / "conftest.py").write_text(variant.conftest)
        (directory / "test_module.py").write_text(TEST_MODULE)
        for path in (directory, *directory.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_pytest(directory: Path, variant: _Variant) -> float:
    """Wall seconds of one pytest process; it must pass all the tests."""
    command = [current_python(), "-m", "pytest", "-q", "-p", "no:cacheprovider", *variant.arguments]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "test_module.py"],
        cwd=directory,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_S,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not re.search(rf"\b{TESTS} passed\b", done.stdout):
        raise SystemExit(
            f"{variant.label} did not pass:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return seconds


def _measure(variants: dict[str, _Variant]) -> dict[str, list[float]]:
    """A warm-up run, then ``ROUNDS`` rounds of every variant in a rotating order.

    The warm-up (imports, bytecode and file caches) is skipped for the default pytest-postgresql
    variant: what it adds to the tuned one is its data directory's disk, and it is the slowest.
    """
    times: dict[str, list[float]] = {name: [] for name in variants}
    with ExitStack() as stack:
        projects = {name: stack.enter_context(_project(name, v)) for name, v in variants.items()}
        for name, variant in variants.items():
            if name != "default":
                _run_pytest(projects[name], variant)
        for number in range(ROUNDS):
            names = [n for n in variants if n != "default" or number < DEFAULT_ROUNDS]
            names = names[number % len(names) :] + names[: number % len(names)]
            for name in names:
                times[name].append(_run_pytest(projects[name], variants[name]))
            progress(f"round {number + 1}/{ROUNDS}")
    return times


def run() -> str:
    """Time every variant and return the Markdown section."""
    binaries = find_binaries([])
    if binaries is None:
        raise SystemExit("no PostgreSQL binaries found: the fixture benchmark needs them")
    basetemps = {
        kind: root / f"pgkeel-bench-fixtures-{kind}-{os.getpid()}"
        for kind, root in (("default", Path(tempfile.gettempdir())), ("tuned", scratch_root()))
    }
    load_before = load()
    try:
        with tempfile.TemporaryDirectory(prefix="pgkeel-bench-pg-ctl-") as wrapper:
            pg_ctl = _pg_ctl_for_peer(binaries.tool("pg_ctl"), Path(wrapper))
            variants = _variants(pg_ctl, basetemps)
            times = _measure(variants)
    finally:
        for basetemp in basetemps.values():
            shutil.rmtree(basetemp, ignore_errors=True)
    return _report(variants, times, binaries.major, load_before)


def _report(
    variants: dict[str, _Variant], times: dict[str, list[float]], major: int, load_before: str
) -> str:
    def row(name: str) -> str:
        samples = times[name]
        spread = f"{min(samples):.2f}-{max(samples):.2f}"
        versus = (
            ""
            if name == "pgkeel"
            else f"{paired_ratio(times['pgkeel'][: len(samples)], samples):.2f}x"
        )
        median = statistics.median(samples)
        return f"| {variants[name].label} | {median:.2f} s ({spread}) | {versus} |"

    table = [
        "| variant | wall per pytest run, median (range) | pgkeel vs this |",
        "|---|---|---|",
        *(row(name) for name in variants),
    ]
    if "default" not in variants:
        table.append(f"| pytest-postgresql | {not_installed('pytest-postgresql')} | |")
    notes = (
        f"{TESTS} tests (one parametrized function) on {TABLES} tables, each with a foreign "
        f"key, an index and a unique column; PostgreSQL {major}. One warm-up run (not for the "
        f"default variant, the slowest: its time is its disk), then {ROUNDS} rounds (the default "
        f"variant in the first {DEFAULT_ROUNDS}), each running every variant once as a new pytest "
        "process, in a "
        "rotating order; ratios are medians of the per-round ratios (below 1: pgkeel is "
        "faster). Wall time of the whole process: interpreter, plugin, server start, schema, "
        f"tests and cleanup. Tuned means `postgresql_postgres_options = '{_tuned_options()}'` "
        "(pytest-postgresql already starts the server with `-F`, fsync off) and `--basetemp` "
        "in pgkeel's scratch directory, so the data directory is in memory. Each variant "
        "gets a `--basetemp` of its own: pytest prunes the numbered directories of other runs "
        "of the same user, a running server's data directory included. "
        f"{PEER_CANNOT} Load average (1 min) before and after: {load_before}, {load()}."
    )
    return notes + "\n\n" + "\n".join(table)
