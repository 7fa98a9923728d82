"""A no-op ``alembic revision --autogenerate`` on 200 tables: with pgkeel's plugin vs plain Alembic.

Both runs use the same models, the same database (migrated to head) and the same versions
directory; only ``env.py`` differs: plain Alembic's ``context.configure(...)`` against
``alembic_extensions.run_migrations(...)``. Runs are interleaved. The statements each run sends
are counted too, for 20 and for 200 tables: what the plugin adds must not grow with the tables.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import ForeignKey
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench._statements import counting
from pgkeel import SoftDeleteMixin, TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.database import provide_server
from pgkeel.testing.databases import create_database, drop_database
from pgkeel.types import TYPE_ANNOTATION_MAP

TITLE = "Autogenerate: a no-op revision on 200 tables, pgkeel's plugin vs plain Alembic"
TABLES = 200
SMALL = 20
RUNS = 9  # sized so that `make bench` as a whole stays under 10 minutes

PLAIN_ENV = """\
import importlib

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

models = importlib.import_module(context.config.get_main_option("models"))
engine = create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=models.Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

PGKEEL_ENV = """\
import importlib

from alembic import context

from alembic_extensions import run_migrations

models = importlib.import_module(context.config.get_main_option("models"))
run_migrations(context, models.Base.metadata, url=context.config.get_main_option("sqlalchemy.url"))
"""


def models(tables: int) -> str:
    """A module of ``tables`` pgkeel models on an isolated base; return its (importable) name.

    A tenants table, then items that each reference the previous one (an indexed foreign key),
    half of them tenant tables with soft delete (RLS policy, partial unique index), all with
    timestamps (a trigger each).
    """
    name = f"bench_autogenerate_models_{tables}"
    module = types.ModuleType(name)

    class Base(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP

    type("Tenant", (UUIDPrimaryKeyMixin, TimestampMixin, Base), {"__annotations__": {}})
    for number in range(1, tables):
        tenant = number % 2 == 0
        bases = (
            UUIDPrimaryKeyMixin,
            TimestampMixin,
            *((TenantMixin, SoftDeleteMixin) if tenant else ()),
            Base,
        )
        namespace: dict[str, Any] = {
            "__tablename__": f"items_{number:03d}",
            "__annotations__": {"code": Mapped[str], "note": Mapped[str | None]},
            "code": mapped_column(unique=True),
            "note": mapped_column(),
        }
        if number > 1:
            namespace["__annotations__"]["previous_id"] = Mapped[uuid.UUID | None]
            namespace["previous_id"] = mapped_column(
                ForeignKey(f"items_{number - 1:03d}.id"), index=True
            )
        type(f"Item{number:03d}", bases, namespace)
    module.Base = Base  # type: ignore[attr-defined]
    sys.modules[name] = module
    return name


class Project:
    """Two env.py files over one versions directory and one database."""

    def __init__(self, directory: Path, url: URL, models_module: str) -> None:
        self.directory = directory
        for kind, env in (("plain", PLAIN_ENV), ("pgkeel", PGKEEL_ENV)):
            scripts = directory / kind
            scripts.mkdir()
            (scripts / "env.py").write_text(env)
            template = Path(command.__file__).parent / "templates" / "generic" / "script.py.mako"
            (scripts / "script.py.mako").write_text(template.read_text())
        (directory / "versions").mkdir()
        self.url = url.render_as_string(hide_password=False)
        self.models = models_module

    def config(self, kind: str) -> Config:
        """The Alembic config of one of the two environments."""
        config = Config(stdout=io.StringIO())
        config.set_main_option("script_location", str(self.directory / kind))
        config.set_main_option("version_locations", str(self.directory / "versions"))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.set_main_option("models", self.models)
        return config

    def migrate(self) -> None:
        """Write the first revision with pgkeel's plugin and apply it."""
        command.revision(self.config("pgkeel"), message="create items", autogenerate=True)
        command.upgrade(self.config("pgkeel"), "head")

    def no_op_revision(self, kind: str) -> tuple[float, float]:
        """Wall and CPU seconds of one autogenerate that finds nothing; its file is removed."""
        before = set((self.directory / "versions").iterdir())
        started, cpu = time.perf_counter(), time.process_time()
        command.revision(self.config(kind), message="nothing", autogenerate=True)
        seconds = (time.perf_counter() - started, time.process_time() - cpu)
        # Plain Alembic writes an empty revision; pgkeel writes none when nothing changed.
        for written in set((self.directory / "versions").iterdir()) - before:
            body = written.read_text()
            written.unlink()
            if "op." in body.split("def upgrade", 1)[1]:
                raise AssertionError(f"the {kind} run was not a no-op:\n{body}")
        return seconds


def _statements(project: Project, kind: str) -> list[str]:
    with counting() as sent:
        project.no_op_revision(kind)
    return sent


def _added(project: Project) -> tuple[int, int]:
    """Statements pgkeel's run sends beyond plain Alembic's, and how many read the catalog."""
    plain, pgkeel = _statements(project, "plain"), _statements(project, "pgkeel")
    markers = ("pg_trigger", "pg_policy", "prorettype", "relrowsecurity", "pg_enum")
    catalog = [s for s in pgkeel if any(marker in s for marker in markers)]
    return len(pgkeel) - len(plain), len(catalog)


@contextmanager
def _project(server: URL, tables: int) -> Iterator[Project]:
    name = f"bench_autogenerate_{tables}"
    drop_database(server, name)
    url = create_database(server, name)
    try:
        with tempfile.TemporaryDirectory() as directory:
            project = Project(Path(directory), url, models(tables))
            project.migrate()
            yield project
    finally:
        drop_database(server, name)


def run() -> str:
    """Time both runs on 200 tables, count statements on 20 and 200; the Markdown section."""
    with provide_server({}) as server:
        with _project(server.url, SMALL) as small:
            small.no_op_revision("pgkeel")  # warm-up: imports, caches
            added_small = _added(small)
        with _project(server.url, TABLES) as project:
            project.no_op_revision("plain")
            project.no_op_revision("pgkeel")
            timings: dict[str, list[tuple[float, float]]] = {"plain": [], "pgkeel": []}
            for run in range(RUNS):  # interleaved, and each goes first every other run
                order = ("plain", "pgkeel") if run % 2 == 0 else ("pgkeel", "plain")
                for kind in order:
                    timings[kind].append(project.no_op_revision(kind))
            added_large = _added(project)
    plain, pgkeel = ([wall for wall, _ in timings[k]] for k in ("plain", "pgkeel"))
    plain_cpu, pgkeel_cpu = ([cpu for _, cpu in timings[k]] for k in ("plain", "pgkeel"))
    ratio = _paired_ratio(pgkeel, plain)
    cpu_ratio = _paired_ratio(pgkeel_cpu, plain_cpu)
    rows = [
        (
            f"no-op `alembic revision --autogenerate`, {TABLES} tables, with pgkeel's plugin",
            _seconds(pgkeel),
            f"{ratio:.2f}x",
            f"<= 1.10x: {'met' if ratio <= 1.10 else 'NOT met'}",
        ),
        ("baseline: the same with plain Alembic", _seconds(plain), "1.00x", ""),
        (
            "the plugin's run, CPU time of the Alembic process",
            _seconds(pgkeel_cpu),
            f"{cpu_ratio:.2f}x",
            "",
        ),
        ("plain Alembic's run, CPU time of the Alembic process", _seconds(plain_cpu), "1.00x", ""),
        (
            f"statements the plugin adds (catalog queries among them), {SMALL} tables",
            f"{added_small[0]} ({added_small[1]})",
            "",
            "",
        ),
        (
            f"statements the plugin adds (catalog queries among them), {TABLES} tables",
            f"{added_large[0]} ({added_large[1]})",
            "",
            f"same as {SMALL} tables: {'met' if added_small == added_large else 'NOT met'}",
        ),
    ]
    table = ["| measurement | median (range) | ratio | goal |", "|---|---|---|---|"]
    table.extend("| " + " | ".join(row) + " |" for row in rows)
    return (
        f"Median of {RUNS} interleaved runs each (alternating which goes first); the ratio is "
        "the median of the ratios of the runs made back to back (load average during the run: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores). Same models "
        f"(a tenants table and {TABLES - 1} items: timestamps trigger, foreign key to the "
        "previous table, half with tenant RLS and soft delete), same database migrated to "
        "head, same versions directory; only env.py differs. The statement the plugin adds "
        "is its catalog query: trigger functions, triggers, row security, policies, enum "
        "types and their columns, for all tables in one statement. (The `set_config` that "
        "gives each transaction its timeouts goes on the cursor before the first statement, "
        "and is not counted.) The CPU "
        "rows time the Alembic process alone (not the server): they move less than wall time "
        "when the machine is busy.\n\n" + "\n".join(table)
    )


def _paired_ratio(measured: list[float], baseline: list[float]) -> float:
    """Median of the ratios of runs made back to back: a busy machine slows both of a pair."""
    return statistics.median(m / b for m, b in zip(measured, baseline, strict=True))


def _seconds(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} s ({min(samples):.2f}-{max(samples):.2f})"
