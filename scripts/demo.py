"""`make demo`: pgkeel's main job, end to end, from an empty directory to a tested migration.

It starts a throwaway PostgreSQL (this machine's binaries or the pgserver wheel; DATABASE_URL is
never used, so your own database stays untouched), renders a service from ``template/`` with
``cookiecutter --no-input`` into ``build/demo/``, installs it into its own virtualenv with pgkeel
from this checkout, migrates an empty database, adds an ``Invoice`` model, lets the Alembic
plugin write its migration, applies it and runs the service's tests; then it serves the API as
the runtime role and shows, over HTTP, that each tenant sees only its own projects. PostgreSQL
is stopped at the end, also on an error, Ctrl-C or SIGTERM. Every command's output goes to
``build/demo/demo.log``.

Usage: ``python scripts/demo.py [--build-dir DIR] [KEY=VALUE ...]`` (cookiecutter answers,
e.g. ``multi_tenant=no``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psycopg
from psycopg import sql

from pgkeel.database import Cluster, find_binaries, throwaway_cluster
from pgkeel.database.process import cleanup_on_exit, forget, free_port
from pgkeel.database.resolve import not_found_message
from pgkeel.errors import DatabaseNotFoundError, PgkeelError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pgkeel.database import Attempt

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template"
DEFAULT_BUILD_DIR = ROOT / "build" / "demo"
MARKER = ".pgkeel-demo"  # marks a build directory the demo may delete and recreate
LOG_NAME = "demo.log"
STEP_COUNT = 9
SERVER_START_S = 60.0
DEMO_TENANTS = {"Acme": ["Website", "Billing"], "Globex": ["Warehouse"]}
PYTEST_LINES_SHOWN = 12
INTERRUPTED = 130
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CHILD_GRACE_S = 10.0

# Variables that would point the service's commands somewhere else than the demo's database.
FOREIGN_ENV = ("DATABASE_URL", "MIGRATION_DATABASE_URL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
FOREIGN_ENV_PREFIXES = ("PYTEST_", "COV_")

INVOICE_MODEL = '''\
"""Invoices: what the service bills to a user."""

import uuid
from decimal import Decimal

from pgkeel import {base}, SoftDeleteMixin, Str255
{imports}


class Invoice({base}, SoftDeleteMixin):
    """An amount billed to a user; its number is unique among live invoices{scope}."""

    number: Mapped[Str255] = mapped_column(unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
{reference}'''
# How an invoice points at its user: within one tenant, a same-tenant key (the
# tenant-foreign-key rule refuses a plain one); otherwise a plain foreign key.
TENANT_REFERENCE = (
    (
        "from pgkeel.tenancy import tenant_foreign_key\n"
        "from sqlalchemy import Numeric\n"
        "from sqlalchemy.orm import Mapped, mapped_column"
    ),
    (
        "    user_id: Mapped[uuid.UUID]\n\n"
        '    __table_args__ = (tenant_foreign_key("user_id", "users.id"),)\n'
    ),
)
PLAIN_REFERENCE = (
    (
        "from sqlalchemy import ForeignKey, Numeric\n"
        "from sqlalchemy.orm import Mapped, mapped_column\n\n"
        "from app.models.user import User"
    ),
    "    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(User.id))\n",
)
INVOICE_IMPORT = "from app.models.invoice import Invoice\n"
IMPORT_ANCHOR = "from app.models.project import Project\n"
ALL_ANCHOR = '__all__ = ["Base", '

TABLES = """
    select c.relname, c.relrowsecurity
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind = 'r' and c.relname <> 'alembic_version'
    order by c.relname
"""
FK_INDEXES = """
    select (
               select string_agg(a.attname, ', ' order by k.n)
               from unnest(c.conkey) with ordinality k(attnum, n)
               join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum
           ),
           c.confrelid::regclass::text, i.indexrelid::regclass::text,
           pg_get_indexdef(i.indexrelid)
    from pg_constraint c
    left join lateral (
        select indexrelid from pg_index
        where indrelid = c.conrelid
          and (indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey
        order by indnatts, indexrelid::regclass::text limit 1
    ) i on true
    where c.conrelid = %(table)s::regclass and c.contype = 'f'
    order by 1
"""
TRIGGERS = """
    select tgname, tgfoid::regproc::text from pg_trigger
    where tgrelid = %(table)s::regclass and not tgisinternal order by tgname
"""
# What each of pgkeel's trigger functions keeps right, as the summary names it.
TRIGGER_LABELS = {
    "pgkeel_set_updated_at": "updated_at trigger",
    "pgkeel_set_is_deleted": "is_deleted trigger",
}
RLS = "select relrowsecurity, relforcerowsecurity from pg_class where oid = %(table)s::regclass"
POLICIES = "select policyname, cmd from pg_policies where tablename = %(table)s order by policyname"
PARTIAL_UNIQUE = """
    select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index
    where indrelid = %(table)s::regclass and indisunique and indpred is not null
    order by 1
"""


class DemoError(Exception):
    """A step failed: what went wrong, and (if the step's own fix does not fit) how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Step:
    """One headed step of the demo, with the fix to suggest when it fails."""

    number: int
    title: str
    fix: str


STEPS = {
    "postgres": Step(1, "Start PostgreSQL", ""),
    "render": Step(
        2,
        "Render a service from the template",
        "with answers given to the demo, type what the error says instead; without, "
        "`git status template/` shows local changes to the template and "
        "`pytest tests/template` checks it",
    ),
    "install": Step(
        3,
        "Install it into its own virtualenv, with pgkeel from this checkout",
        "check that uv can reach its package index (set UV_INDEX_URL for a mirror), "
        "then run `make demo` again",
    ),
    "migrate": Step(
        4,
        "Migrate an empty database",
        "the template's first migration must apply on a fresh database; "
        "`pytest tests/template -m slow` shows why it does not",
    ),
    "model": Step(5, "Add a model", "check that {service} is a service rendered from template/"),
    "revision": Step(
        6,
        "Let the plugin write the migration",
        "read the report in {log}: it names the rule, the table.column and the fix",
    ),
    "upgrade": Step(
        7,
        "Apply it",
        "the new migration is in {service}/app/alembic/versions; its error is in {log}",
    ),
    "tests": Step(
        8,
        "Run the service's tests",
        "rerun them there: `cd {service} && . .venv/bin/activate && make db` and `pytest`",
    ),
    "serve": Step(
        9,
        "Serve it over HTTP, as the runtime role",
        "start it there: `cd {service} && . .venv/bin/activate && python -m app.api`; "
        "its log is in {log}",
    ),
}


def display(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it, else absolute."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return str(relative) if relative.parts else "."


@dataclass
class Console:
    """Where the demo's story goes: headings, commands, results; and the log of every command."""

    out: IO[str]
    log: IO[str] | None = None
    bold: bool = False

    def say(self, line: str = "") -> None:
        """Print one line of the story."""
        self.out.write(line + "\n")
        self.out.flush()

    def heading(self, step: Step) -> None:
        """Print a step's heading."""
        text = f"{step.number}. {step.title}"
        self.say()
        self.say(f"\033[1m{text}\033[0m" if self.bold else text)

    def command(self, command: str) -> None:
        """Print a command as a user would type it."""
        self.say(f"   $ {command}")

    def result(self, text: str) -> None:
        """Print what a command gave."""
        self.say(f"   -> {text}")

    def block(self, text: str) -> None:
        """Print a file or an output, indented under its step."""
        for line in text.rstrip("\n").splitlines():
            self.say(f"      {line}".rstrip())

    def record(self, command: str, output: str) -> None:
        """Append a command and its whole output to the log."""
        if self.log is not None:
            self.log.write(f"$ {command}\n{output}\n")
            self.log.flush()


def last_error_line(output: str) -> str:
    """The line of a command's output that best says why it failed.

    The hook's, pip's or Alembic's own error line, pytest's summary line, else the last line (for a
    traceback, the exception and its message).
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for prefixes in (("error:",), ("ERROR", "FAILED")):  # cookiecutter hooks' lines first
        for line in reversed(lines):
            if line.startswith(prefixes):
                return line
    for line in reversed(lines):
        if line.startswith("=") and re.search(r"\b(failed|errors?)\b", line):
            return line.strip("= ")
    return lines[-1] if lines else "(no output)"


def run(console: Console, argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> str:
    """Show a command and run it in its own process group (stopped on Ctrl-C); its output."""
    command = shlex.join(argv)
    console.command(command)
    started: list[subprocess.Popen[str]] = []

    def stop() -> None:
        for process in started:
            stop_group(process)
            if process.stdout is not None:
                process.stdout.close()

    cleanup_on_exit(stop)
    try:
        with signals_deferred():  # a signal now would miss the child: it waits until it is known
            started.append(
                subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
            )
        output, _ = started[0].communicate()
    finally:
        forget(stop)
        stop()
    console.record(command, output)
    if started[0].returncode != 0:
        raise DemoError(
            f"`{command}` exited with {started[0].returncode}: {last_error_line(output)}"
        )
    return output


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them to the usual handlers."""
    pending: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        pending.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for held in pending:
            signal.raise_signal(held)


def stop_group(process: subprocess.Popen[str]) -> None:
    """Stop a command and what it started: SIGINT (as Ctrl-C would), then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    for signum, timeout in ((signal.SIGINT, CHILD_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        return


def distribution_name(info: Path, default: str) -> str:
    """A distribution's name as its authors spell it (``SQLAlchemy``), from its metadata."""
    with suppress(OSError):
        for line in (info / "METADATA").read_text(errors="replace").splitlines():
            if line.startswith("Name:"):
                return line.removeprefix("Name:").strip()
    return default


def clean_environ() -> dict[str, str]:
    """This process's environment without what would redirect the service's commands."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in FOREIGN_ENV and not key.startswith(FOREIGN_ENV_PREFIXES)
    }


def prepare_build_dir(build_dir: Path) -> None:
    """Empty the build directory (only one the demo made), then mark it as the demo's."""
    if build_dir.exists():
        if not (build_dir / MARKER).exists() and any(build_dir.iterdir()):
            raise DemoError(
                f"{build_dir} exists and was not made by `make demo`, so it is left alone",
                "remove it, or pass another directory with --build-dir",
            )
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    (build_dir / MARKER).write_text("made by pgkeel's `make demo`; deleted by the next run\n")


def start_postgres(stack: ExitStack) -> tuple[Cluster, str]:
    """A throwaway cluster from this machine's binaries or the pgserver wheel, and its origin."""
    attempts: list[Attempt] = []
    binaries = find_binaries(attempts)
    if binaries is None:
        raise DatabaseNotFoundError(not_found_message(attempts))
    return stack.enter_context(throwaway_cluster(binaries)), binaries.origin


@dataclass(frozen=True)
class TableFacts:
    """What the catalog says about one table after the migrations."""

    fk_indexes: list[tuple[str, str, str | None, str | None]]
    triggers: list[tuple[str, str]]
    rls: tuple[bool, bool]
    policies: list[tuple[str, str]]
    partial_unique: list[tuple[str, str]]


def table_facts(conninfo: str, table: str) -> TableFacts:
    """Read back from the catalog the indexes, triggers, RLS and policies of ``table``."""
    params = {"table": table}
    with psycopg.connect(conninfo) as connection:
        rls = connection.execute(RLS, params).fetchone()
        return TableFacts(
            fk_indexes=connection.execute(FK_INDEXES, params).fetchall(),
            triggers=connection.execute(TRIGGERS, params).fetchall(),
            rls=(bool(rls[0]), bool(rls[1])) if rls else (False, False),
            policies=connection.execute(POLICIES, params).fetchall(),
            partial_unique=connection.execute(PARTIAL_UNIQUE, params).fetchall(),
        )


def database_state(conninfo: str) -> str:
    """The revision the database is at and its tables, in one line."""
    with psycopg.connect(conninfo) as connection:
        revision = connection.execute("select version_num from alembic_version").fetchone()
        tables = connection.execute(TABLES).fetchall()
    names = ", ".join(name for name, _ in tables)
    secured = ", ".join(name for name, rls in tables if rls)
    at = revision[0] if revision else "none"
    state = f"database at revision {at}: tables {names}"
    return f"{state}; row-level security on {secured}" if secured else state


@dataclass
class Demo:
    """The demo's state, step after step."""

    console: Console
    build_dir: Path
    answers: list[str]
    started: float = field(default_factory=time.perf_counter)
    step: Step | None = None
    cluster: Cluster | None = None
    service: Path | None = None
    migration: Path | None = None
    facts: TableFacts | None = None
    multi_tenant: bool = True
    port: int = 0

    def begin(self, key: str) -> None:
        """Print the heading of a step and remember it for error messages."""
        self.step = STEPS[key]
        self.console.heading(self.step)

    @property
    def venv(self) -> Path:
        """The service's virtualenv."""
        return self.service_dir / ".venv"

    @property
    def service_dir(self) -> Path:
        """The rendered service (after step 2)."""
        if self.service is None:
            raise DemoError("the service has not been rendered yet")
        return self.service

    @property
    def server(self) -> Cluster:
        """The throwaway cluster (after step 1)."""
        if self.cluster is None:
            raise DemoError("PostgreSQL has not been started yet")
        return self.cluster

    @property
    def database_conninfo(self) -> str:
        """The libpq connection string of the service's database."""
        return self.server.conninfo(self.database_name)

    @property
    def database_name(self) -> str:
        """The service's database: named after the service."""
        return self.service_dir.name

    def tool_env(self) -> dict[str, str]:
        """Environment of the commands run with pgkeel's own tools (cookiecutter, pip)."""
        env = clean_environ()
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        scratch = self.build_dir / ".tmp"  # uv leaves its lock files in TMPDIR: keep them here
        scratch.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(scratch)
        return env

    def cookiecutter_env(self) -> dict[str, str]:
        """Environment of cookiecutter: it writes nothing outside the build directory.

        Its config keeps the replay file here and ``~/.cookiecutterrc`` out; TMPDIR catches the
        rendered hook scripts, which cookiecutter leaves in the temporary directory.
        """
        directory = self.build_dir / ".cookiecutter"
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        config = directory / "config.yaml"
        config.write_text(
            f"replay_dir: {directory / 'replay'}\ncookiecutters_dir: {directory / 'templates'}\n"
        )
        return {
            **self.tool_env(),
            "COOKIECUTTER_CONFIG": str(config),
            "TMPDIR": str(directory / "tmp"),
            "PWD": str(Path.cwd()),  # the template path is typed relative to it
        }

    def service_env(self) -> dict[str, str]:
        """Environment of the service's commands: its virtualenv and the demo's database."""
        env = clean_environ()
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["DATABASE_URL"] = self.database_url()
        return env

    def database_url(self) -> str:
        """The URL of the service's database, as ``DATABASE_URL``."""
        url = self.server.url(self.database_name)
        return url.render_as_string(hide_password=False)

    def run_service(self, *argv: str) -> str:
        """Run a command of the service, in its directory and virtualenv."""
        return run(self.console, argv, cwd=self.service_dir, env=self.service_env())

    def start_postgres(self, stack: ExitStack) -> None:
        """Step 1: a throwaway cluster, stopped and removed when the demo ends."""
        self.begin("postgres")
        began = time.perf_counter()
        self.cluster, origin = start_postgres(stack)
        with psycopg.connect(self.cluster.conninfo()) as connection:
            row = connection.execute("show server_version").fetchone()
        version = str(row[0]).split()[0] if row else "?"
        self.console.result(
            f"PostgreSQL {version} from {origin}, "
            f"on 127.0.0.1:{self.cluster.port}, ready in {time.perf_counter() - began:.1f} s"
        )
        self.console.result(
            "a throwaway cluster: it is stopped and its directory removed when the demo ends"
        )

    def render(self) -> None:
        """Step 2: ``cookiecutter --no-input`` into the build directory."""
        self.begin("render")
        output_dir = display(self.build_dir)
        argv = ["cookiecutter", "--no-input", display(TEMPLATE), "--output-dir", output_dir]
        argv += list(self.answers)  # pgkeel: a wheel built from this checkout (from-template)
        run(self.console, argv, cwd=Path.cwd(), env=self.cookiecutter_env())
        rendered = [
            path for path in self.build_dir.iterdir() if (path / "pyproject.toml").is_file()
        ]
        if len(rendered) != 1:
            raise DemoError(f"cookiecutter did not create one service in {output_dir}")
        self.service = rendered[0]
        models = sorted(
            path.stem.capitalize()
            for path in (self.service / "app/models").glob("*.py")
            if path.stem not in {"__init__", "base"}
        )
        self.multi_tenant = (self.service / "app/models/tenant.py").exists()
        kind = "multi-tenant" if self.multi_tenant else "single-tenant"
        migrations = sorted(p.name for p in (self.service / "app/alembic/versions").glob("*.py"))
        self.console.result(
            f"{display(self.service)}/: a {kind} service; models {', '.join(models)}; "
            f"migration {', '.join(migrations)}"
        )

    def install(self) -> None:
        """Step 3: a virtualenv for the service, with its dev tools and pgkeel from here."""
        self.begin("install")
        began = time.perf_counter()
        self.console.command(f"cd {display(self.service_dir)}")
        run(self.console, ["make", "install"], cwd=self.service_dir, env=self.tool_env())
        self.console.command(". .venv/bin/activate")
        self.console.result(f"{self.installed_summary()} in {time.perf_counter() - began:.1f} s")

    def installed_summary(self) -> str:
        """How many packages the virtualenv holds, and the versions of the main ones."""
        found = {}
        for info in self.venv.glob("lib/python*/site-packages/*.dist-info"):
            name, _, version = info.name.removesuffix(".dist-info").partition("-")
            found[name.lower()] = (info, version)
        shown = []
        for name in ("pgkeel", "sqlalchemy", "alembic", "psycopg", "pytest"):
            if name in found:
                info, version = found[name]
                shown.append(f"{distribution_name(info, name)} {version}")
        return f"{len(found)} packages, among them {', '.join(shown)} (pgkeel from {ROOT})"

    def create_database(self) -> None:
        """Create the service's empty database on the throwaway cluster."""
        with psycopg.connect(self.server.conninfo(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database_name))
            )

    def migrate(self) -> None:
        """Step 4: ``alembic upgrade head`` on an empty database."""
        self.begin("migrate")
        self.create_database()
        self.console.command(f"export DATABASE_URL={self.database_url()}")
        self.run_service("alembic", "upgrade", "head")
        self.console.result(database_state(self.database_conninfo))

    def add_model(self) -> None:
        """Step 5: write ``app/models/invoice.py`` and import it where autogenerate looks."""
        self.begin("model")
        models = self.service_dir / "app" / "models"
        base, scope = (
            ("MultiTenantModel", " of a tenant") if self.multi_tenant else ("BaseModel", "")
        )
        imports, reference = TENANT_REFERENCE if self.multi_tenant else PLAIN_REFERENCE
        source = INVOICE_MODEL.format(base=base, scope=scope, imports=imports, reference=reference)
        init = models / "__init__.py"
        text = init.read_text()
        if IMPORT_ANCHOR not in text or ALL_ANCHOR not in text:
            raise DemoError(
                f"{display(init)} no longer imports Project and lists __all__ as expected"
            )
        (models / "invoice.py").write_text(source)
        init.write_text(
            text.replace(IMPORT_ANCHOR, INVOICE_IMPORT + IMPORT_ANCHOR).replace(
                ALL_ANCHOR, ALL_ANCHOR + '"Invoice", '
            )
        )
        self.console.result("app/models/invoice.py:")
        self.console.block(source)
        self.console.result(
            f"app/models/__init__.py: + {INVOICE_IMPORT.strip()}   "
            "(autogenerate sees the models imported there)"
        )

    def revision(self) -> None:
        """Step 6: ``alembic revision --autogenerate`` and the migration it wrote, printed."""
        self.begin("revision")
        versions = self.service_dir / "app" / "alembic" / "versions"
        before = set(versions.glob("*.py"))
        self.run_service("alembic", "revision", "--autogenerate", "-m", "add invoices")
        added = sorted(set(versions.glob("*.py")) - before)
        if len(added) != 1:
            raise DemoError(f"autogenerate wrote {len(added)} migration files instead of one")
        self.migration = added[0]
        self.console.result(f"app/alembic/versions/{self.migration.name}:")
        self.console.block(self.migration.read_text())

    def upgrade(self) -> None:
        """Step 7: apply the new migration and read back what it made."""
        self.begin("upgrade")
        self.run_service("alembic", "upgrade", "head")
        self.console.result(database_state(self.database_conninfo))
        self.facts = table_facts(self.database_conninfo, "invoices")
        missing = missing_objects(self.facts, multi_tenant=self.multi_tenant)
        if missing:
            raise DemoError(
                f"after `alembic upgrade head` the invoices table has no {', '.join(missing)}",
                f"the plugin should have written them; {self.migration} shows what it wrote",
            )

    def test(self) -> None:
        """Step 8: the service's own test suite, on the same PostgreSQL."""
        self.begin("tests")
        output = self.run_service("pytest", "-q")
        lines = [line for line in output.splitlines() if line.strip()]
        self.console.block("\n".join(lines[-PYTEST_LINES_SHOWN:]))

    def create_runtime_role(self) -> str:
        """A role like production's runtime role (no superuser, no BYPASSRLS); its URL."""
        role, password = f"{self.database_name}_app", secrets.token_hex(12)
        identifier = sql.Identifier(role)
        with psycopg.connect(self.server.conninfo(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOBYPASSRLS").format(
                    identifier, sql.Literal(password)
                )
            )
        with psycopg.connect(self.database_conninfo, autocommit=True) as connection:
            connection.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(identifier))
            connection.execute(
                sql.SQL(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
                ).format(identifier)
            )
        url = self.server.url(self.database_name).set(username=role, password=password)
        return url.render_as_string(hide_password=False)

    def start_api(self, stack: ExitStack, database_url: str, port: int) -> None:
        """``python -m app.api`` in the background, stopped when the demo ends."""
        env = {**self.service_env(), "DATABASE_URL": database_url, "PORT": str(port)}
        self.console.command(f"DATABASE_URL=<runtime role> PORT={port} python -m app.api &")
        log = self.build_dir / LOG_NAME
        with signals_deferred():
            server = subprocess.Popen(
                [str(self.venv / "bin" / "python"), "-m", "app.api"],
                cwd=self.service_dir,
                env=env,
                stdout=stack.enter_context(log.open("a")),
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        cleanup_on_exit(lambda: stop_group(server))
        stack.callback(stop_group, server)
        deadline = time.monotonic() + SERVER_START_S
        while http_call("GET", f"http://127.0.0.1:{port}/readyz")[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise DemoError("the service did not become ready (GET /readyz)")
            time.sleep(0.2)

    def request(
        self, method: str, path: str, body: dict[str, str] | None = None, tenant: str = ""
    ) -> tuple[int, object]:
        """One HTTP request, printed as curl; its status and JSON."""
        words = ["curl", "-s"] + (["-X", method] if method != "GET" else [])
        if tenant:
            words += ["-H", f"X-Tenant-ID: {tenant}"]
        if body is not None:
            words += ["-H", "content-type: application/json", "-d", json.dumps(body)]
        self.console.command(shlex.join([*words, f"localhost:{self.port}{path}"]))
        status, answer = http_call(method, f"http://127.0.0.1:{self.port}{path}", body, tenant)
        shown = json.dumps(answer)
        if isinstance(answer, dict) and isinstance(answer.get("items"), list):
            names = ", ".join(str(item.get("name")) for item in answer["items"])
            shown = f"items: [{names}], next: {json.dumps(answer.get('next'))}"
        self.console.result(f"{status} {shown if len(shown) < 110 else shown[:107] + '...'}")
        return status, answer

    def serve(self, stack: ExitStack) -> None:
        """Step 9: the API on the migrated database; each tenant creates and sees its own."""
        self.begin("serve")
        if not (self.service_dir / "app" / "api").is_dir():
            self.console.result("skipped: this service was rendered with http=none")
            return
        self.port = free_port()
        self.start_api(stack, self.create_runtime_role(), self.port)
        tenants = dict.fromkeys(DEMO_TENANTS, "")
        if self.multi_tenant:
            for name in tenants:
                tenants[name] = str(self.expect(201, "POST", "/tenants", {"name": name})["id"])
        for name, projects in DEMO_TENANTS.items():
            for project in projects:
                self.expect(201, "POST", "/projects", {"name": project}, tenants[name])
        if not self.multi_tenant:
            self.expect(200, "GET", "/projects")
            return
        for name, projects in DEMO_TENANTS.items():
            seen = [
                item["name"]
                for item in self.expect(200, "GET", "/projects", None, tenants[name])["items"]
            ]
            if seen != projects:
                raise DemoError(f"tenant {name} sees {seen}, not its own projects {projects}")
        self.expect(400, "GET", "/projects")

    def expect(
        self,
        status: int,
        method: str,
        path: str,
        body: dict[str, str] | None = None,
        tenant: str = "",
    ) -> dict[str, object]:
        """A request that must answer ``status``; its JSON object."""
        got, answer = self.request(method, path, body, tenant)
        if got != status or not isinstance(answer, dict):
            raise DemoError(f"{method} {path} answered {got}, not {status}: {answer}")
        return answer

    def fix_for(self, step: Step) -> str:
        """The fix of a step, with its paths filled in."""
        service = display(self.service) if self.service else display(self.build_dir)
        return step.fix.format(service=service, log=display(self.build_dir / LOG_NAME))

    def summary(self) -> None:
        """What the demo showed, read back from the catalog, and where the service is."""
        say = self.console.say
        say()
        say("What the plugin wrote for one new model (read back from the database's catalog):")
        for label, text in summary_rows(self.facts, multi_tenant=self.multi_tenant):
            say(f"   {label:<22}{text}")
        say()
        say(
            f"Done in {time.perf_counter() - self.started:.0f} s. PostgreSQL is stopped and its "
            "directory removed; nothing is left running."
        )
        say(
            f"The service stays in {display(self.service_dir)}/ (replaced by the next `make demo`):"
        )
        say(f"   cd {display(self.service_dir)} && . .venv/bin/activate")
        say("   make db     # a development PostgreSQL in .pgkeel/, kept between runs")
        say("   make help   # the daily commands")


def http_call(
    method: str, url: str, body: dict[str, str] | None = None, tenant: str = ""
) -> tuple[int, object]:
    """Status and JSON of one request (0 and None when nothing answers)."""
    headers = {"content-type": "application/json"} | ({"X-Tenant-ID": tenant} if tenant else {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # 127.0.0.1
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"null")
    except OSError:
        return 0, None


def missing_objects(facts: TableFacts, *, multi_tenant: bool) -> list[str]:
    """The standard objects the invoices table lacks."""
    expected = {
        "foreign-key index": any(
            target == "users" and index for _, target, index, _ in facts.fk_indexes
        ),
        "updated_at trigger": any(
            function == "pgkeel_set_updated_at" for _, function in facts.triggers
        ),
        "partial unique index": bool(facts.partial_unique),
    }
    if multi_tenant:
        expected["row-level security policy"] = facts.rls[0] and bool(facts.policies)
    return [name for name, present in expected.items() if not present]


def summary_rows(facts: TableFacts | None, *, multi_tenant: bool) -> list[tuple[str, str]]:
    """One (label, text) row per standard the new table shows."""
    if facts is None:
        return []
    rows = [
        ("foreign-key index", f"{column} -> {target}: {index} {index_columns(definition)}")
        for column, target, index, definition in facts.fk_indexes
        if index and definition
    ]
    rows += [
        (TRIGGER_LABELS.get(function, "trigger"), f"{name} runs {function}()")
        for name, function in facts.triggers
    ]
    if multi_tenant:
        enabled, forced = facts.rls
        state = "enabled and forced" if enabled and forced else "enabled" if enabled else "off"
        policies = ", ".join(f"{name} ({command} commands)" for name, command in facts.policies)
        rows.append(("row-level security", f"{state}; policy {policies}"))
    else:
        rows.append(("row-level security", "not used: this service is single-tenant"))
    rows += [
        ("partial unique index", f"{name} {index_columns(definition)}")
        for name, definition in facts.partial_unique
    ]
    return rows


def index_columns(definition: str) -> str:
    """The columns (and predicate) of ``pg_get_indexdef``'s output: ``(a, b) WHERE ...``."""
    match = re.search(r" USING \w+ (.*)$", definition)
    return match.group(1) if match else definition


def failure(demo: Demo, problem: str, fix: str | None) -> str:
    """The one-paragraph error for a failed step."""
    step = demo.step
    where = f" at step {step.number} of {STEP_COUNT} ({step.title})" if step else ""
    if fix is None:
        fix = demo.fix_for(step) if step and "Fix:" not in problem else ""
    text = f"make demo failed{where}: {problem.rstrip('.')}."
    if fix:
        text += f" Fix: {fix}."
    log = demo.build_dir / LOG_NAME
    if log.exists() and log.stat().st_size:
        text += f" Every command's output is in {display(log)}."
    return text


def run_demo(demo: Demo) -> None:
    """Every step, with PostgreSQL stopped at the end whatever happens."""
    demo.console.say(
        "pgkeel demo: a new service from the template, a new model, its migration and the "
        "service's tests, on a throwaway PostgreSQL"
    )
    with ExitStack() as stack:
        demo.start_postgres(stack)
        demo.render()
        demo.install()
        demo.migrate()
        demo.add_model()
        demo.revision()
        demo.upgrade()
        demo.test()
        demo.serve(stack)
    demo.summary()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line: the build directory and cookiecutter answers."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD_DIR,
        help="where the service is rendered; emptied first (default: build/demo)",
    )
    parser.add_argument("answers", nargs="*", metavar="KEY=VALUE", help="cookiecutter answers")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; a failure is one paragraph that names the step and the fix."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    build_dir: Path = args.build_dir.absolute()
    console = Console(sys.stdout, bold=sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    demo = Demo(console, build_dir, list(args.answers))
    try:
        prepare_build_dir(build_dir)
        with (build_dir / LOG_NAME).open("w") as log:
            console.log = log
            try:
                run_demo(demo)
            except Exception:
                log.write(traceback.format_exc())
                raise
    except KeyboardInterrupt:
        where = f" during step {demo.step.number} ({demo.step.title})" if demo.step else ""
        sys.stderr.write(f"\nmake demo interrupted{where}; PostgreSQL is stopped.\n")
        return INTERRUPTED
    except DemoError as exc:
        sys.stderr.write("\n" + failure(demo, exc.problem, exc.fix) + "\n")
        return 1
    except PgkeelError as exc:
        sys.stderr.write("\n" + failure(demo, str(exc), "") + "\n")
        return 1
    except (OSError, psycopg.Error) as exc:
        sys.stderr.write("\n" + failure(demo, f"{type(exc).__name__}: {exc}", None) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
