"""A real schema (Apache Airflow): no-op autogenerate and ``alembic check``, pgkeel vs plain.

The models are those of a real, public open-source SQLAlchemy 2 project, Apache Airflow
(``apache-airflow-core``, Apache License 2.0): 57 tables, custom column types
(``UtcDateTime``, ``ExtendedJSON``, a pickle type built with ``pickler=dill``), partial and
expression indexes, JSON columns, an ``Enum``, integer and UUID keys. No Airflow source is part
of this repository: the package is installed from PyPI into an environment of its own
(``.bench/real-schema-...``, made once and reused) together with pgkeel from this checkout, and
only its model modules are imported (``airflow.models.import_all_models()``), never its
scheduler or its API server.

Airflow predates pgkeel, so its project settings (``[tool.pgkeel]``, written into the project's
pyproject.toml) turn off the rules an existing schema cannot meet at once and keep the others:
the adoption path of docs/alembic.md. The same helpers lay out the project for
``tests/alembic/test_real_schema.py``.

The benchmark migrates two databases to head, one with pgkeel's ``env.py`` and one with plain
Alembic's, then times, interleaved, a no-op ``alembic revision --autogenerate`` and a no-op
``alembic check`` on each, in one process per side (Airflow's import is paid once).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import _envs

TITLE = "A real schema (Apache Airflow, 57 tables): autogenerate and alembic check, pgkeel vs plain"
ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT = "apache-airflow-core==3.3.2"
LICENSE = "Apache License 2.0"
CACHE_ENV = "PGKEEL_REAL_SCHEMA_ENV"
"""Where the environment lives (default: ``~/.cache/pgkeel/real-schema-...``, kept between runs)."""
ENVIRONMENT = Path(
    os.environ.get(CACHE_ENV)
    or Path.home()
    / ".cache"
    / "pgkeel"
    / f"real-schema-{REQUIREMENT.replace('==', '-')}-py{sys.version_info[0]}{sys.version_info[1]}"
)
_READY = "pgkeel-real-schema.json"
RUNS = 9  # pairs of processes per command: sized so that `make bench` stays under 10 minutes
GOAL = 1.10
"""pgkeel's plugin against plain Alembic, CPU time, for each row."""
WARM = 4

SETTINGS = """\
[project]
name = "airflow-schema"
version = "0"

[tool.alembic]
script_location = "%(here)s/migrations"

# An existing schema adopting pgkeel: what it cannot meet at once is off or a warning.
[tool.pgkeel.rules]
plural-table-name = "off"
timestamps = "off"
uuid-primary-key = "off"
jsonb = "warn"
timestamptz = "warn"
"""

MODELS = """\
import os

os.environ.setdefault("AIRFLOW_HOME", os.path.join(os.path.dirname(__file__), "airflow-home"))

from airflow.models import import_all_models  # noqa: E402
from airflow.models.base import Base  # noqa: E402

import_all_models()
"""

PGKEEL_ENV = """\
from alembic import context

from alembic_extensions import run_migrations
from airflow_models import Base

run_migrations(context, Base.metadata)
"""

PLAIN_ENV = """\
import logging
import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from airflow_models import Base

logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
engine = create_engine(os.environ["DATABASE_URL"], poolclass=NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""


class EnvironmentUnavailableError(RuntimeError):
    """The real project's package could not be installed (no registry, no wheel...)."""


def python() -> Path:
    """The Python of the real-schema environment."""
    return ENVIRONMENT / "bin" / "python"


def _pip(*args: str) -> None:
    done = subprocess.run(
        [str(python()), "-m", "pip", "install", "-q", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise EnvironmentUnavailableError(
            f"pip could not install {' '.join(args)} into {ENVIRONMENT}:\n{done.stderr[-3000:]}"
        )


def ensure_environment() -> Path:
    """The environment with the real project and pgkeel's dependencies, made once per machine.

    The project's package is large, so the environment is kept between runs and shared by every
    checkout on the machine: pgkeel is installed in it once (for its dependencies and its Alembic
    entry point), and each command runs this checkout's code ahead of it (``environ``).
    """
    marker = ENVIRONMENT / _READY
    made = json.loads(marker.read_text()) if marker.is_file() else {}
    if made.get("requirement") == REQUIREMENT:
        return ENVIRONMENT
    shutil.rmtree(ENVIRONMENT, ignore_errors=True)
    ENVIRONMENT.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(ENVIRONMENT)], check=True)
    _pip(REQUIREMENT, "-e", f"{ROOT}[alembic]")
    marker.write_text(json.dumps({"requirement": REQUIREMENT}))
    return ENVIRONMENT


def write_project(directory: Path, env_py: str = PGKEEL_ENV) -> Path:
    """Lay out an Alembic project on Airflow's models in ``directory`` (pyproject.toml only)."""
    migrations = directory / "migrations"
    (migrations / "versions").mkdir(parents=True, exist_ok=True)
    (directory / "pyproject.toml").write_text(SETTINGS)
    (directory / "airflow_models.py").write_text(MODELS)
    (migrations / "env.py").write_text(env_py)
    (migrations / "script.py.mako").write_text(
        (ROOT / "tests" / "alembic" / "examples" / "script.py.mako").read_text()
    )
    return directory


def environ(database_url: str, directory: Path) -> dict[str, str]:
    """The environment of a command run on the project in ``directory``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL"))}
    return inherited | {
        "DATABASE_URL": database_url,
        # The project's models, then this checkout's pgkeel ahead of the one installed.
        "PYTHONPATH": os.pathsep.join([str(directory), str(ROOT / "src"), str(ROOT)]),
        "AIRFLOW_HOME": str(directory / "airflow-home"),
    }


def alembic(directory: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``alembic ARGS`` of the real-schema environment, in ``directory``."""
    return subprocess.run(
        [str(ENVIRONMENT / "bin" / "alembic"), *args],
        cwd=directory,
        env=environ(database_url, directory),
        capture_output=True,
        text=True,
        check=False,
    )


LAUNCHED_ENV = "PGKEEL_BENCH_LAUNCHED"
"""The wall-clock time (``time.time()``) at which the bench started the measuring process."""


class NoOpRuns:
    """No-op runs of a command on the project in ``directory``, in this process.

    Run inside the real-schema environment. Plain Alembic's autogenerate writes an empty
    revision file; ``tidy`` removes what the runs wrote, outside whatever is measured.
    """

    def __init__(self, directory: Path) -> None:
        import logging  # noqa: PLC0415

        from alembic.config import Config  # noqa: PLC0415

        sys.path.insert(0, str(directory))
        logging.disable(logging.WARNING)  # the jsonb warnings: the same text on every run
        self.config = Config(toml_file=str(directory / "pyproject.toml"), stdout=io.StringIO())
        self.versions = directory / "migrations" / "versions"
        self.kept = set(self.versions.iterdir())

    def run(self, kind: str) -> None:
        """One no-op ``alembic revision --autogenerate`` (``kind`` autogenerate) or ``check``."""
        from alembic import command  # noqa: PLC0415

        if kind == "autogenerate":
            command.revision(self.config, message="noop", autogenerate=True)
        else:
            command.check(self.config)

    def tidy(self) -> None:
        """Remove the revision files the runs wrote."""
        for path in set(self.versions.iterdir()) - self.kept:
            path.unlink()


# Run inside the real-schema environment (``python -m bench.real_schema time DIR KIND RUNS``).
def _time_in_process(directory: Path, kind: str, runs: int) -> dict[str, Any]:
    """``runs`` no-op runs of ``kind`` in this process: the first cold, the others warm.

    Each run is timed as wall clock and as this process's CPU time; the whole process up to the
    end of the first run (interpreter, Airflow's models, Alembic, the command) is what the
    command costs on the command line. Before each run a full garbage collection is made and
    left out of the timings (and out of the whole process's): Airflow's import leaves some
    230,000 objects that each full collection walks (150-250 ms), and the one that falls due
    lands in whichever run crosses the threshold, which a few thousand allocations move from
    one run to the next. Each run still pays the collections of what it allocates itself.
    """
    import gc  # noqa: PLC0415

    runs_of = NoOpRuns(directory)
    import airflow_models  # noqa: F401, PLC0415  # paid once, outside the runs' timings

    timings: list[tuple[float, float]] = []
    process: tuple[float, float] = (0.0, 0.0)
    collecting = (0.0, 0.0)
    for _ in range(runs):
        before_collect, cpu_before_collect = time.perf_counter(), time.process_time()
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        if not timings:
            collecting = (started - before_collect, cpu - cpu_before_collect)
        runs_of.run(kind)
        timings.append((time.perf_counter() - started, time.process_time() - cpu))
        if len(timings) == 1:
            launched = float(os.environ[LAUNCHED_ENV])
            process = (
                time.time() - launched - collecting[0],
                time.process_time() - collecting[1],
            )
        runs_of.tidy()
    return {"runs": timings, "process": process}


def _measure(directory: Path, database_url: str, kind: str) -> dict[str, Any]:
    env = environ(database_url, directory) | {LAUNCHED_ENV: repr(time.time())}
    result = subprocess.run(
        [str(python()), "-m", "bench.real_schema", "time", str(directory), kind, str(WARM + 1)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def compile_sources(projects: Path) -> None:
    """Compile this checkout's modules and the projects' files to bytecode, as use leaves them.

    The bench runs pgkeel from this checkout (``environ``); where ``PYTHONDONTWRITEBYTECODE`` is
    set, nothing would cache bytecode and every measured process would compile pgkeel's sources
    and the projects' revision files again: a cost an installed package (compiled by pip, as
    Alembic's and Airflow's are) and a project whose files were loaded once do not pay.
    """
    sources = [ROOT / "src" / "pgkeel", ROOT / "alembic_extensions", ROOT / "bench", projects]
    subprocess.run([str(python()), "-m", "compileall", "-q", *map(str, sources)], check=True)


CREATE_ALL = """\
import os

from sqlalchemy import create_engine

from airflow_models import Base

engine = create_engine(os.environ["DATABASE_URL"])
Base.metadata.create_all(engine)
engine.dispose()
"""


_INDEXES_SQL = """\
SELECT t.relname, i.relname, x.indisunique, x.indpred IS NOT NULL,
       ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
             LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
             ORDER BY k.n)::text[], 0 = ANY(x.indkey::int2[])
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace s ON s.oid = t.relnamespace
WHERE s.nspname = 'public'
"""

EXTRA_INDEXES = """
# The indexes pgkeel's migration made for foreign keys, declared here too, so that plain Alembic
# compares the same schema as pgkeel's plugin (the bench measures the plugin, not the schema).
from sqlalchemy import Index  # noqa: E402

for _table, _name, _columns in {indexes!r}:
    Index(_name, *(Base.metadata.tables[_table].c[_column] for _column in _columns))
"""


def _indexes(url: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """The public schema's plain column indexes: (table, index) -> columns."""
    from sqlalchemy import create_engine, text  # noqa: PLC0415  # bench helpers load lazily

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(_INDEXES_SQL)).all()
    finally:
        engine.dispose()
    found = {}
    for table, index, unique, partial, columns, has_expression in rows:
        if not (unique or partial or has_expression):
            found[table, index] = tuple(columns)
    return found


def _foreign_key_indexes(pgkeel_url: str, plain_url: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The plain column indexes pgkeel's database has and ``create_all``'s does not."""
    plain = _indexes(plain_url)
    return sorted(
        (table, index, columns)
        for (table, index), columns in _indexes(pgkeel_url).items()
        if (table, index) not in plain
    )


def _same_indexes(directory: Path, pgkeel_url: str, plain_url: str) -> int:
    """Give plain's side the indexes pgkeel's migration made for foreign keys; how many.

    pgkeel indexes every foreign key; Airflow's models and ``create_all`` do not. Left so, the
    two sides compare different schemas, and plain Alembic reflects and compares 13 indexes
    fewer (about 6 % of a run). Each such index is created in plain's database, as pgkeel's
    database has it, and declared in plain's models, so that ``alembic check`` stays a no-op
    and both sides compare one schema: what differs is the plugin's work.
    """
    from psycopg import sql  # noqa: PLC0415  # bench helpers load lazily
    from sqlalchemy import create_engine  # noqa: PLC0415

    extra = _foreign_key_indexes(pgkeel_url, plain_url)
    engine = create_engine(plain_url)
    try:
        with engine.begin() as connection:
            for table, name, columns in extra:
                statement = sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(name),
                    sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                )
                connection.exec_driver_sql(statement.as_string())
    finally:
        engine.dispose()
    models = directory / "airflow_models.py"
    models.write_text(models.read_text() + EXTRA_INDEXES.format(indexes=extra))
    return len(extra)


def _migrated(directory: Path, url: str, env_py: str, history: Path | None = None) -> Path:
    """pgkeel's side through its migration; plain Alembic's through ``create_all``.

    Plain Alembic's own autogenerated migration cannot run: it writes Airflow's column types
    without their import (``NameError: name 'airflow' is not defined``). So that both sides
    load the same history on each command (Alembic reads every revision file), plain's side
    gets pgkeel's revision file (``history``) and is stamped at it.
    """
    write_project(directory, env_py)
    if env_py == PLAIN_ENV:
        subprocess.run(
            [str(python()), "-c", CREATE_ALL],
            cwd=directory,
            env=environ(url, directory),
            check=True,
            capture_output=True,
        )
        for revision in history.glob("*.py") if history is not None else ():
            shutil.copy(revision, directory / "migrations" / "versions" / revision.name)
        done = alembic(directory, url, "stamp", "head")
        assert done.returncode == 0, done.stdout + done.stderr
        return directory
    for args in (("revision", "--autogenerate", "-m", "airflow"), ("upgrade", "head")):
        done = alembic(directory, url, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return directory


@contextmanager
def prepared_projects() -> Iterator[tuple[dict[str, Path], dict[str, str], int]]:
    """Both projects on a throwaway server, migrated and compiled: directories, URLs, shared.

    ``shared`` is the number of pgkeel's foreign-key indexes given to plain's side too.
    """
    import tempfile  # noqa: PLC0415

    from pgkeel.database import provide_server  # noqa: PLC0415
    from pgkeel.testing.databases import create_database, drop_database  # noqa: PLC0415

    ensure_environment()
    workdir = Path(tempfile.mkdtemp(prefix="pgkeel-real-schema-"))
    with provide_server({}) as provided:
        server = provided.url
        urls = {side: create_database(server, f"bench_real_{side}") for side in ("pgkeel", "plain")}
        try:
            texts = {side: url.render_as_string(hide_password=False) for side, url in urls.items()}
            pgkeel_dir = _migrated(workdir / "pgkeel", texts["pgkeel"], PGKEEL_ENV)
            history = pgkeel_dir / "migrations" / "versions"
            dirs = {
                "pgkeel": pgkeel_dir,
                "plain": _migrated(workdir / "plain", texts["plain"], PLAIN_ENV, history),
            }
            shared = _same_indexes(dirs["plain"], texts["pgkeel"], texts["plain"])
            compile_sources(workdir)
            yield dirs, texts, shared
        finally:
            for side in urls:
                drop_database(server, f"bench_real_{side}")
            shutil.rmtree(workdir, ignore_errors=True)


def run() -> str:
    """Migrate one database per side, then time the no-op runs, interleaved."""
    loads = [_envs.load()]
    with prepared_projects() as (dirs, texts, shared):
        timings: dict[str, dict[str, list[tuple[float, float]]]] = {"pgkeel": {}, "plain": {}}
        for number in range(RUNS):
            for kind in _LABELS:
                for side in ("plain", "pgkeel") if number % 2 else ("pgkeel", "plain"):
                    measured = _measure(dirs[side], texts[side], kind)
                    first, *warm = (tuple(run) for run in measured["runs"])
                    timings[side].setdefault(f"{kind} process", []).append(
                        tuple(measured["process"])
                    )
                    timings[side].setdefault(f"{kind} cold", []).append(first)
                    timings[side].setdefault(f"{kind} warm", []).append(_median_run(warm))
        loads.append(_envs.load())
    return _report(timings, loads, shared)


_LABELS = {
    "autogenerate": "no-op `alembic revision --autogenerate`",
    "check": "no-op `alembic check`",
}


_PHASES = (
    ("process", "the whole command in a fresh process (interpreter, models, Alembic, the run)"),
    ("cold", "first run in a process"),
    ("warm", "later runs in the same process"),
)


def _median_run(runs: list[tuple[float, ...]]) -> tuple[float, float]:
    """One process's later runs as one (wall, CPU) pair: the median of each."""
    return (statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs))


def _ratio(plain: list[tuple[float, float]], ours: list[tuple[float, float]], column: int) -> float:
    """The median of the ratios of the processes run back to back."""
    return statistics.median(o[column] / p[column] for p, o in zip(plain, ours, strict=True))


def _cells(plain: list[tuple[float, float]], ours: list[tuple[float, float]], column: int) -> str:
    """Both sides' medians, and the median of the ratios of the processes run back to back."""
    plain_median = statistics.median(t[column] for t in plain)
    ours_median = statistics.median(t[column] for t in ours)
    ratio = _ratio(plain, ours, column)
    return f"{plain_median * 1000:.0f} ms | {ours_median * 1000:.0f} ms | {ratio:.2f}x"


def _verdict(plain: list[tuple[float, float]], ours: list[tuple[float, float]]) -> str:
    """The goal, judged on CPU time (the steadier column on a shared machine)."""
    met = _ratio(plain, ours, 1) <= GOAL
    return f"<= {GOAL:.2f}x: {'met' if met else '**not met**'}"


def _report(
    timings: dict[str, dict[str, list[tuple[float, float]]]], loads: list[str], shared: int
) -> str:
    rows = []
    for kind, label in _LABELS.items():
        for phase, what in _PHASES:
            plain, ours = (timings[side][f"{kind} {phase}"] for side in ("plain", "pgkeel"))
            cells = [_cells(plain, ours, column) for column in (0, 1)]  # wall clock, then CPU
            rows.append(f"| {label}, {what} | {' | '.join(cells)} | {_verdict(plain, ours)} |")
    intro = (
        f"Apache Airflow's models ({REQUIREMENT}, {LICENSE}; installed from PyPI into a bench "
        "environment of its own): pgkeel's database migrated by its own migration, plain "
        "Alembic's built by `create_all` (plain Alembic's own migration of these models cannot "
        "run: it writes Airflow's column types without their import). Each measuring process "
        "is a fresh one, started as the command line starts `alembic`: it imports Alembic "
        "(which loads pgkeel's plugin module through its entry point) and Airflow's models, "
        f"then runs the command {WARM + 1} times, each run after a full garbage collection "
        "left out of the timings (see `_time_in_process`: otherwise the collection that "
        "Airflow's objects make due, 150-250 ms, falls into whichever run crosses the "
        f"threshold). {RUNS} processes per side and command, run in pairs (one process per "
        "side back to back, alternating which goes first); medians, and each ratio is the "
        "median of the pairs' ratios (a busy machine slows both of a pair alike); a process's "
        "later runs count as their median. The *whole command* row "
        "times the process from its start to the end of its first run: what `alembic check` "
        "costs on the command line, Airflow's import (the same on both sides) included. The "
        "*first run* row leaves that import out; the *later runs* rows are a process that "
        "runs the command again (a test suite, a tool that calls `command.check`). CPU is the "
        "Alembic process's own time, not the server's: it moves less than wall time on a busy "
        "machine. Both projects have the same history (pgkeel's revision; plain's database, "
        "built by `create_all`, is stamped at it), and pgkeel's modules and the projects' files "
        "are compiled to bytecode first, as installing a wheel and a first run leave them "
        "(`compile_sources`). Both compare one schema: the "
        f"{shared} indexes pgkeel's migration made for foreign keys (which Airflow's models do "
        "not declare) are created in plain's database too and declared in its models "
        "(`_same_indexes`), so that what differs between the sides is the plugin's work, not "
        "how many indexes Alembic reflects. Load average (1 min) before and after: "
        f"{', '.join(loads)} (2 cores, shared)."
    )
    table = [
        "| run | plain wall | pgkeel wall | ratio | plain CPU | pgkeel CPU | ratio | goal (CPU) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    return "\n".join([intro, "", *table, "", _PROFILE])


_PROFILE = """\
Where the time goes (goal: <= 1.10x), counted rather than timed: `python -m
bench._real_schema_instructions check autogenerate` runs the same measuring processes under
callgrind and counts each run's instructions, which do not move with the machine's load (later
runs of one process agree to within 0.5%). For a no-op `alembic check` on these 57 tables:
pgkeel's modules' import is about 27M instructions, pgkeel's work in each run about 32M
against plain Alembic's 522M (the rules, the server-default, check, key, predicate, enum and
object comparisons, the one catalog statement), and work done on the first run only (memos of
rendered defaults and predicates, the expression lexer's pattern) about 5M. So a later run
counts 1.06x, the first run 1.08x, and 1.07x with the modules imported before it
(autogenerate: 1.04x, 1.03x, 1.01x; plain Alembic renders and writes an empty file, pgkeel
writes none). Most tables and columns are settled by a cheap test before any comparison or
import (no default on either side, no foreign key, no partial index, the same primary key);
what is left is pgkeel's rules (about 3 ms a run), its other comparators (under 1.2 ms each)
and, in the first run, the import of its modules (about 7 ms of CPU timed alone, `python -m
bench._real_schema_parts check`), whose instructions cost about half as much time again as a
warm run's. The timed first-run rows read 1 to 6 hundredths above their counts, and move by
several hundredths from one run of the bench to the next on this shared machine (see
docs/performance.md, 'Where the remaining gaps come from')."""


if __name__ == "__main__":
    if sys.argv[1:2] == ["time"]:
        measured = _time_in_process(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        print(json.dumps(measured))
