"""A rendered service, installed as its README says, passes its own checks.

One service per (``multi_tenant``, ``http``) pair (``postgres_version`` only changes Docker
images, which cannot run here), installed by its own ``make install`` on a machine where pgkeel
is on no package index, shared by the tests of that pair:

- the default answers (multi-tenant, FastAPI) are rendered as a new user does it from a
  published repository: from the git URL of a clean clone of this checkout, into an empty
  directory, and installed with no uv on PATH (the Makefile installs uv from PyPI);
- the other pairs are rendered from a release: pgkeel's wheel, with uv on PATH.

The service's tests use this session's PostgreSQL server through ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from pgkeel.database.process import free_port
from pgkeel.testing.databases import create_database, drop_database
from pgkeel.testing.pgbouncer import find_pgbouncer, pgbouncer
from tests.databases import drop_role
from tests.template.conftest import ROOT, TEMPLATE, render_into

pytestmark = pytest.mark.slow

INITIAL_MIGRATIONS = TEMPLATE / "templates" / "initial_migration"
DEPENDENCY_NAMES = TEMPLATE / "dependency_names.txt"
UPDATE_ENV = "PGKEEL_UPDATE_TEMPLATE"
MODEL_BASES = {"yes": "MultiTenantModel", "no": "BaseModel"}

INVOICE_MODEL = '''\
"""Invoices: what a project bills."""

import enum
import uuid
from decimal import Decimal

from pgkeel import {base}, SoftDeleteMixin, Str255
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.models.project import Project


class InvoiceStatus(enum.StrEnum):
    """Where an invoice stands."""

    DRAFT = "draft"
    SENT = "sent"
    PAID = "paid"


class Invoice({base}, SoftDeleteMixin):
    """An amount billed for a project."""

    number: Mapped[Str255]
    amount: Mapped[Decimal]
    status: Mapped[InvoiceStatus]
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Project.id))
'''
# In a multi-tenant service a reference between tenant tables is a same-tenant key (to users,
# whose (tenant_id, id) key the initial migration already has).
TENANT_INVOICE_MODEL = (
    INVOICE_MODEL.replace(
        "from sqlalchemy import ForeignKey\n", "from pgkeel.tenancy import tenant_foreign_key\n"
    )
    .replace("\nfrom app.models.project import Project\n", "")
    .replace(
        "    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Project.id))\n",
        "    billed_user_id: Mapped[uuid.UUID] = mapped_column()\n\n"
        '    __table_args__ = (tenant_foreign_key("billed_user_id", "users.id"),)\n',
    )
)


# Run in the service's environment as its runtime role, through PgBouncer: what each tenant sees.
TENANT_PROBE = """\
import json

from pgkeel import tenant_context
from sqlalchemy import text

from app.core.database import get_sessionmaker
from app.models import Tenant, User

factory = get_sessionmaker()
with factory.begin() as session:
    tenants = [Tenant(name="Acme"), Tenant(name="Globex")]
    session.add_all(tenants)
    session.flush()
    ids = [tenant.id for tenant in tenants]
for tenant_id, email in zip(ids, ["ann@acme.test", "gus@globex.test"]):
    with tenant_context(tenant_id), factory.begin() as session:
        session.add(User(email=email, display_name=email))
seen = {}
for name, tenant_id in zip(["acme", "globex"], ids):
    with tenant_context(tenant_id), factory.begin() as session:
        seen[name] = session.execute(text("select email from users")).scalars().all()
with factory.begin() as session:
    seen["no tenant"] = session.execute(text("select count(*) from users")).scalar_one()
print(json.dumps(seen))
"""


def find_psql() -> str | None:
    """psql on PATH, else the newest one of Debian's PostgreSQL packages."""
    found = shutil.which("psql")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    return found or (str(candidates[-1]) if candidates else None)


@dataclass(frozen=True)
class Service:
    """A rendered service with its own virtual environment."""

    path: Path
    venv: Path
    multi_tenant: str
    server: URL

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a command run inside the service's virtual environment."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "MIGRATION_DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV"}
            and not key.startswith(("PYTEST_", "COV_"))
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["DATABASE_URL"] = self.server.render_as_string(hide_password=False)
        env["TEST_DATABASE_URL"] = env["DATABASE_URL"]  # the service's tests' server
        env.update(extra)
        return env

    def run(self, *command: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run a console script of the virtual environment in the service's directory."""
        return subprocess.run(
            [str(self.venv / "bin" / command[0]), *command[1:]],
            cwd=self.path,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            check=False,
        )

    def ok(self, *command: str, **extra_env: str) -> str:
        """Run a command that must succeed; its output."""
        result = self.run(*command, **extra_env)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def migrations(self) -> set[str]:
        """The file names in ``app/alembic/versions``."""
        return {path.name for path in (self.path / "app/alembic/versions").glob("*.py")}


def clean_clone(destination: Path) -> Path:
    """A git repository holding what a clone of this checkout holds (its files as they are now)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=pgkeel tests", "-c", "user.email=tests@pgkeel.invalid"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "pgkeel"]):
        subprocess.run([*git, *command], cwd=destination, check=True, capture_output=True)
    return destination


def path_without_uv() -> str:
    """PATH without the directories that hold a ``uv`` program."""
    directories = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in directories if d and not (Path(d) / "uv").exists())


VARIANTS = [("yes", "fastapi"), ("no", "fastapi"), ("yes", "none"), ("no", "none")]
DEFAULT_ANSWERS = ("yes", "fastapi")


@pytest.fixture(
    scope="module",
    params=VARIANTS,
    ids=lambda variant: f"multi_tenant={variant[0]}-http={variant[1]}",
)
def service(
    request: pytest.FixtureRequest,
    hook_scratch_dir: Path,
    cookiecutter_config: Path,
    pgkeel_server_url: URL,
    pgkeel_wheel: Path,
) -> Iterator[Service]:
    """A service rendered as a new user does and installed by ``make install``.

    Its directory is one every user can enter: ``make db`` keeps the development cluster in the
    service's ``.pgkeel/``, run by an unprivileged user when the tests run as root.
    """
    multi_tenant, http = request.param
    workdir = Path(tempfile.mkdtemp(prefix=f"service-{multi_tenant}-{http}-", dir=hook_scratch_dir))
    workdir.chmod(0o755)
    output = workdir / "out"
    output.mkdir()
    if request.param == DEFAULT_ANSWERS:
        repository = clean_clone(workdir / "pgkeel")
        path = render_into(
            output, cookiecutter_config, f"git+file://{repository}", directory="template"
        )
        shutil.rmtree(repository)  # the service must not need the clone any more
        env_path = path_without_uv()
    else:
        path = render_into(
            output,
            cookiecutter_config,
            multi_tenant=multi_tenant,
            http=http,
            pgkeel_requirement=str(pgkeel_wheel),
        )
        env_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    assert sorted(output.iterdir()) == [path]
    service = Service(path, path / ".venv", multi_tenant, pgkeel_server_url)
    install = subprocess.run(
        ["make", "install"],
        cwd=path,
        env={**service.env(), "PATH": env_path},
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    yield service
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def empty_database(service: Service, pgkeel_database_prefix: str) -> Iterator[str]:
    """URL of an empty database for the service's migrations, dropped after the test."""
    name = f"{pgkeel_database_prefix}_svc_{service.multi_tenant}"
    url = create_database(service.server, name)
    yield url.render_as_string(hide_password=False)
    drop_database(service.server, name)


def test_the_rendered_service_holds_no_path_of_this_machine(service: Service) -> None:
    needles = [str(ROOT), str(service.path.parent.parent), str(Path.home()), "file://"]
    generated = {".venv", ".tools", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
    for path in service.path.rglob("*"):
        if path.is_file() and not generated & set(path.relative_to(service.path).parts):
            content = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in content, f"{path.name} holds {needle}"


def test_make_ci_passes(service: Service) -> None:
    result = subprocess.run(
        ["make", "ci"],
        cwd=service.path,
        env=service.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("ruff check", "ruff format --check", "mypy", "pgkeel check", "pytest"):
        assert step in result.stdout
    assert " passed" in result.stdout
    assert " failed" not in result.stdout


def readme_daily_loop(service: Service) -> str:
    """The README's daily commands as one shell line, but for writing a new migration."""
    readme = (service.path / "README.md").read_text()
    block = readme.split("## Daily commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    kept = [command for command in commands if command and "revision" not in command]
    assert kept[:2] == ["source .venv/bin/activate", 'eval "$(make -s db)"'], kept
    assert {"alembic upgrade head", "pytest", "make doctor"} <= set(kept), kept
    return " && ".join(kept)


def test_the_readme_daily_loop_passes_on_the_make_db_database(service: Service) -> None:
    """make db, migrate, pytest, pgkeel check, make doctor: as the README says, nothing else."""
    env = service.env()
    for name in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "TEST_DATABASE_URL", "VIRTUAL_ENV"):
        env.pop(name, None)
    env["PATH"] = os.environ.get("PATH", "")
    try:
        result = subprocess.run(
            ["bash", "-c", readme_daily_loop(service)],
            cwd=service.path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        subprocess.run(["make", "db-stop"], cwd=service.path, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    assert " failed" not in result.stdout
    assert " errors" not in result.stdout
    assert "pgkeel check: drift: ok" in result.stdout
    assert "pgkeel doctor: database app" in result.stdout
    assert "\nNo findings.\n" in result.stdout


def test_pgkeel_check_passes_on_a_migrated_database(service: Service, empty_database: str) -> None:
    database = {"MIGRATION_DATABASE_URL": empty_database}
    service.ok("alembic", "upgrade", "head", **database)
    report = service.ok("pgkeel", "check", **database)
    assert report.splitlines() == [
        "pgkeel check: rules: ok",
        "pgkeel check: drift: ok",
        "pgkeel check: squawk: ok",
    ]


def test_make_doctor_finds_nothing_on_a_migrated_database(
    service: Service, empty_database: str
) -> None:
    service.ok("alembic", "upgrade", "head", MIGRATION_DATABASE_URL=empty_database)
    result = subprocess.run(
        ["make", "doctor", f"BIN={service.venv / 'bin'}", "fail-on=warning"],
        cwd=service.path,
        env=service.env(DATABASE_URL=empty_database),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\nNo findings.\n" in result.stdout


def locked_names(lock: Path, service_name: str) -> set[str]:
    """The distributions of a uv.lock but the service itself, written as a project_slug is."""
    packages = tomllib.loads(lock.read_text())["package"]
    names = {re.sub(r"[-_.]+", "_", package["name"]).lower() for package in packages}
    return names - {service_name}


def test_every_locked_distribution_is_a_refused_slug(service: Service) -> None:
    """The pre-generation hook refuses as project_slug every name of the service's closure."""
    listed = DEPENDENCY_NAMES.read_text().splitlines()
    comments = [line for line in listed if line.startswith("#")]
    reserved = {line for line in listed if line and not line.startswith("#")}
    locked = locked_names(service.path / "uv.lock", service.path.name)
    if os.environ.get(UPDATE_ENV) == "1":
        DEPENDENCY_NAMES.write_text("\n".join([*comments, *sorted(reserved | locked)]) + "\n")
        reserved |= locked
    assert locked <= reserved, (
        f"template/dependency_names.txt lacks {sorted(locked - reserved)}: add them with "
        f"{UPDATE_ENV}=1 pytest tests/template -m slow -k locked_distribution"
    )


def test_the_committed_initial_migration_is_what_the_plugin_generates(
    service: Service, empty_database: str
) -> None:
    versions = service.path / "app/alembic/versions"
    committed = versions / "0001_initial.py"
    kept = committed.read_text()
    committed.unlink()
    try:
        service.ok(
            "alembic",
            "revision",
            "--autogenerate",
            "-m",
            "initial",
            MIGRATION_DATABASE_URL=empty_database,
        )
        assert service.migrations() == {"0001_initial.py"}
        generated = committed.read_text()
    finally:
        committed.write_text(kept)
    variant = "multi_tenant" if service.multi_tenant == "yes" else "single_tenant"
    if os.environ.get(UPDATE_ENV) == "1":
        (INITIAL_MIGRATIONS / f"{variant}.py.j2").write_text(generated)
    assert generated == kept, (
        f"template/templates/initial_migration/{variant}.py.j2 is stale: regenerate it with "
        f"{UPDATE_ENV}=1 pytest tests/template -m slow -k initial_migration"
    )


def test_a_new_model_gets_its_index_trigger_and_policy(
    service: Service, empty_database: str
) -> None:
    models = service.path / "app/models"
    init = models / "__init__.py"
    original_init = init.read_text()
    before = service.migrations()
    model = TENANT_INVOICE_MODEL if service.multi_tenant == "yes" else INVOICE_MODEL
    (models / "invoice.py").write_text(model.format(base=MODEL_BASES[service.multi_tenant]))
    init.write_text(
        original_init.replace(
            "from app.models.project import Project\n",
            "from app.models.invoice import Invoice\nfrom app.models.project import Project\n",
        ).replace('__all__ = ["Base", ', '__all__ = ["Base", "Invoice", ')
    )
    try:
        database = {"MIGRATION_DATABASE_URL": empty_database}
        service.ok("alembic", "upgrade", "head", **database)
        service.ok("alembic", "revision", "--autogenerate", "-m", "add invoices", **database)
        (added,) = service.migrations() - before
        assert added == "0002_add_invoices.py"
        migration = (service.path / "app/alembic/versions" / added).read_text()
        index = "idx_invoices_tenant_id_billed_user_id" if service.multi_tenant == "yes" else None
        assert (index or "idx_invoices_project_id") in migration
        assert "trg_invoices_updated_at" in migration
        assert ("POLICY" in migration.upper()) is (service.multi_tenant == "yes")
        # The enum type goes with its table: the service's up/down/up migration test passes.
        assert "op.create_enum_type('invoice_status', ['draft', 'sent', 'paid'])" in migration
        assert "op.drop_enum_type('invoice_status', ['draft', 'sent', 'paid'])" in migration
        service.ok("alembic", "upgrade", "head", **database)
        service.ok("alembic", "check", **database)
        service.ok("ruff", "check", "--no-cache", ".")
        service.ok("pytest", "-q", "-p", "no:cacheprovider")
    finally:
        (models / "invoice.py").unlink(missing_ok=True)
        init.write_text(original_init)
        for name in service.migrations() - before:
            (service.path / "app/alembic/versions" / name).unlink()


@pytest.mark.pgbouncer
def test_the_compose_roles_work_through_pgbouncer(
    service: Service, empty_database: str, pgkeel_database_prefix: str
) -> None:
    """docker-compose.yml's stack without Docker: its init script, the owner, PgBouncer."""
    psql, bouncer_program = find_psql(), find_pgbouncer()
    if psql is None or bouncer_program is None:
        pytest.skip("needs psql and pgbouncer (scripts/system-deps.sh installs them)")
    database = make_url(empty_database)
    role, password = f"{pgkeel_database_prefix}_app_{service.multi_tenant}", "app-test-password"
    server = service.server
    init_env = {
        "PATH": f"{Path(psql).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": server.host or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "PGPASSWORD": server.password or "",
        "POSTGRES_USER": server.username or "postgres",
        "POSTGRES_DB": str(database.database),
        "APP_ROLE": role,
        "APP_PASSWORD": password,
    }
    try:
        subprocess.run(
            ["sh", str(service.path / "deploy/postgres/10-app-role.sh")],
            env=init_env,
            capture_output=True,
            check=True,
        )
        service.ok("alembic", "upgrade", "head", MIGRATION_DATABASE_URL=empty_database)
        with pgbouncer(server, users={role: password}) as bouncer:
            runtime = bouncer.url_for(str(database.database), user=role)
            url = {"DATABASE_URL": runtime.render_as_string(hide_password=False)}
            assert f"connected as {role} to {database.database}" in service.ok(
                "python", "-m", "app", **url
            )
            if service.multi_tenant == "yes":
                probe = service.path.parent / "tenant_probe.py"
                probe.write_text(TENANT_PROBE)
                seen = json.loads(service.ok("python", str(probe), **url))
                assert seen == {
                    "acme": ["ann@acme.test"],
                    "globex": ["gus@globex.test"],
                    "no tenant": 0,
                }
    finally:
        drop_role(server, role, str(database.database))


def test_routine_mistakes_get_one_paragraph(service: Service, empty_database: str) -> None:
    """No DATABASE_URL, a database that does not answer, (multi-tenant) a role bypassing RLS."""
    missing = service.run("python", "-m", "app", DATABASE_URL="")
    closed = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing"
    down = service.run("python", "-m", "app", DATABASE_URL=closed)
    migrate_down = service.run("alembic", "upgrade", "head", MIGRATION_DATABASE_URL=closed)
    superuser = service.run("python", "-m", "app", DATABASE_URL=empty_database)
    for result, text in [
        (missing, "DATABASE_URL is not set"),
        (down, "does not answer"),
        (migrate_down, "does not answer"),
    ]:
        assert result.returncode != 0
        assert text in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    traced = service.run("python", "-m", "app", "--traceback", DATABASE_URL=closed)
    assert "Traceback" in traced.stderr
    if service.multi_tenant == "yes":
        assert superuser.returncode == 1
        assert "bypasses row-level security" in superuser.stderr
        assert "ALLOW_RLS_BYPASS=1" in superuser.stderr
        allowed = service.run(
            "python", "-m", "app", DATABASE_URL=empty_database, ALLOW_RLS_BYPASS="1"
        )
        assert allowed.returncode == 0, allowed.stderr
    else:
        assert superuser.returncode == 0, superuser.stderr


NOT_POSTGRESQL = [
    ("not a url", "not a URL"),
    ("mysql://app@localhost/app", "it names 'mysql'"),
    ("postgresql://app@localhost:notaport/app", "not a URL"),
    ("sqlite:///scratch.db", "it names 'sqlite'"),
    ("postgresql+psycopg2://app@localhost/app", "it names the driver 'psycopg2'"),
]


@pytest.mark.parametrize(("url", "reason"), NOT_POSTGRESQL, ids=[u for u, _ in NOT_POSTGRESQL])
def test_a_url_that_is_not_postgresql_gets_one_line(
    service: Service, url: str, reason: str
) -> None:
    """The service, its API and its migrations refuse it by name, and write no file."""
    commands = [("python", "-m", "app"), ("alembic", "upgrade", "head")]
    if (service.path / "app/api").is_dir():
        commands.append(("python", "-m", "app.api"))
    for variable in ("DATABASE_URL", "MIGRATION_DATABASE_URL"):
        for command in commands:
            result = service.run(*command, **{variable: url})
            output = result.stdout + result.stderr  # alembic says FAILED: ... on stdout
            assert result.returncode != 0, command
            assert f"{variable} is not a PostgreSQL URL ({reason}" in output, output
            assert "Fix: set it to a URL such as postgresql+psycopg://" in output
            assert "Traceback" not in output, output
            assert len(output.strip().splitlines()) <= 2, output
    assert not (service.path / "scratch.db").exists()
