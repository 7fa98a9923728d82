"""The Docker files of a rendered service, checked without a Docker engine.

docker-compose.yml is validated against the Compose specification's JSON schema (the copy that
the check-jsonschema package ships) and read for what the stack must do; the Dockerfile's steps
run outside Docker, from a clean copy of the build context (see test_service_e2e.py).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import validators
from sqlalchemy.engine import URL

from pgkeel.database.process import free_port
from pgkeel.testing.databases import create_database, drop_database
from tests.template import dockerfile
from tests.template.conftest import MULTI_TENANT, POSTGRES_VERSIONS, render_into

HTTP = ["fastapi", "none"]
VARIANTS = [(tenant, http) for tenant in MULTI_TENANT for http in HTTP]
MIN_PGBOUNCER = (1, 21)  # prepared statements in transaction mode
COMPOSE_SCHEMA = "compose-spec.json"
SERVER_START_S = 60


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path
) -> dict[tuple[str, str, str], Path]:
    """A service per (multi_tenant, http, postgres_version)."""
    services = {}
    for tenant, http in VARIANTS:
        for version in POSTGRES_VERSIONS:
            output = tmp_path_factory.mktemp(f"docker-{tenant}-{http}-{version}")
            services[tenant, http, version] = render_into(
                output,
                cookiecutter_config,
                multi_tenant=tenant,
                http=http,
                postgres_version=version,
            )
    return services


def compose_of(service: Path) -> dict[str, Any]:
    """The service's docker-compose.yml as data."""
    loaded: dict[str, Any] = yaml.safe_load((service / "docker-compose.yml").read_text())
    return loaded


def compose_schema() -> dict[str, Any]:
    """The Compose specification's schema, as check-jsonschema vendors it."""
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / COMPOSE_SCHEMA
    loaded: dict[str, Any] = json.loads(vendored.read_text())
    return loaded


def test_the_schema_catches_a_broken_compose_file() -> None:
    validator = validators.validator_for(compose_schema())(compose_schema())
    broken = {"services": {"app": {"depends_on": {"db": {"condition": "healthy"}}, "ports": [{}]}}}
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("version", POSTGRES_VERSIONS)
@pytest.mark.parametrize(("tenant", "http"), VARIANTS)
def test_compose_follows_the_compose_specification(
    rendered: dict[tuple[str, str, str], Path], tenant: str, http: str, version: str
) -> None:
    schema = compose_schema()
    validator = validators.validator_for(schema)(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose_of(rendered[tenant, http, version]))
    ]
    assert errors == []


@pytest.mark.parametrize(("tenant", "http"), VARIANTS)
def test_compose_waits_on_health_and_runs_the_migrations_once_as_the_owner(
    rendered: dict[tuple[str, str, str], Path], tenant: str, http: str
) -> None:
    slug = "billing_service"
    services = compose_of(rendered[tenant, http, POSTGRES_VERSIONS[0]])["services"]
    postgres, pgbouncer, migrate, app = (
        services[name] for name in ("postgres", "pgbouncer", "migrate", "app")
    )
    check = postgres["healthcheck"]["test"]
    assert check[0] == "CMD"
    assert check[1:4] == ["pg_isready", "-h", "127.0.0.1"]  # TCP, not the init-time socket
    assert "pg_isready" in pgbouncer["healthcheck"]["test"]
    assert pgbouncer["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert app["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "pgbouncer": {"condition": "service_healthy"},
    }
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert migrate["restart"] == "no"
    owner = migrate["environment"]["MIGRATION_DATABASE_URL"]
    assert owner.startswith(f"postgresql+psycopg://{slug}:")
    assert "@postgres:5432/" in owner
    runtime = app["environment"]["DATABASE_URL"]
    assert runtime.startswith(f"postgresql+psycopg://{slug}_app:")
    assert "@pgbouncer:5432/" in runtime
    assert pgbouncer["environment"]["POOL_MODE"] == "transaction"
    assert f"{slug}_app:" in pgbouncer["environment"]["DATABASE_URL"]
    if http == "fastapi":
        assert app["restart"] == "unless-stopped"
        assert app["environment"]["HOST"] == "0.0.0.0"  # noqa: S104  # inside the container


def test_pgbouncer_is_a_pinned_version_that_keeps_prepared_statements(
    rendered: dict[tuple[str, str, str], Path],
) -> None:
    image = compose_of(rendered["yes", "fastapi", POSTGRES_VERSIONS[0]])["services"]["pgbouncer"][
        "image"
    ]
    match = re.fullmatch(r"[\w./-]+:v?(\d+)\.(\d+)\.(\d+)(-p\d+)?", image)
    assert match, f"{image} is not pinned to a version"
    assert tuple(int(part) for part in match.groups()[:2]) >= MIN_PGBOUNCER


@pytest.mark.parametrize(("tenant", "http"), VARIANTS)
def test_host_ports_come_from_the_environment_and_leave_5432_alone(
    rendered: dict[tuple[str, str, str], Path], tenant: str, http: str
) -> None:
    services = compose_of(rendered[tenant, http, POSTGRES_VERSIONS[0]])["services"]
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert len(published) == (3 if http == "fastapi" else 2)
    for port in published:
        match = re.fullmatch(r"127\.0\.0\.1:\$\{([A-Z_]+)_PORT:-(\d+)\}:\d+", port)
        assert match, f"{port}: not 127.0.0.1:${{NAME_PORT:-default}}:container"
        assert int(match.group(2)) not in {5432, 6432, 8000}


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's ``patterns`` leave ``relative`` out of the build context."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        or fnmatch.fnmatch(parts[n], pattern.removeprefix("**/"))
        for pattern in patterns
        for n, prefix in enumerate(prefixes)
    )


def build_context(service: Path) -> list[str]:
    """The files of the service that ``docker build`` sends, after .dockerignore."""
    patterns = [
        line.strip()
        for line in (service / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    files = (path.relative_to(service).as_posix() for path in service.rglob("*") if path.is_file())
    return sorted(name for name in files if not _ignored(name, patterns))


@pytest.mark.parametrize(("tenant", "http"), VARIANTS)
def test_the_build_context_holds_no_environment_cluster_or_tests(
    rendered: dict[tuple[str, str, str], Path], tenant: str, http: str
) -> None:
    service = rendered[tenant, http, POSTGRES_VERSIONS[0]]
    for leftover in (
        ".venv/bin/python",
        ".pgkeel/postgresql.conf",
        ".env",
        "app/__pycache__/x.pyc",
    ):
        (service / leftover).parent.mkdir(parents=True, exist_ok=True)
        (service / leftover).write_text("")
    context = build_context(service)
    assert "pyproject.toml" in context
    assert "app/models/project.py" in context
    assert not [
        name for name in context if name.split("/")[0] in {".venv", ".pgkeel", ".env", "tests"}
    ]
    assert not [name for name in context if "__pycache__" in name]


@pytest.mark.parametrize(("tenant", "http"), VARIANTS)
def test_the_image_runs_as_non_root_with_a_healthcheck(
    rendered: dict[tuple[str, str, str], Path], tenant: str, http: str
) -> None:
    lines = (rendered[tenant, http, POSTGRES_VERSIONS[0]] / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    command = next(line for line in lines if line.startswith("CMD "))
    assert ("app.api" in command) is (http == "fastapi")


def _copy_context(service: Path, context: Path) -> None:
    """A clean copy of the build context: only what .dockerignore lets through."""
    for name in build_context(service):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(service / name, context / name)


def _wait_for(url: str, server: subprocess.Popen[str]) -> int:
    """The status of ``url`` once the server answers (it must not exit meanwhile)."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[0]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # http://127.0.0.1
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {SERVER_START_S}s")


@pytest.mark.slow
def test_the_dockerfile_steps_install_migrate_and_serve_outside_docker(
    tmp_path: Path, cookiecutter_config: Path, pgkeel_server_url: URL, pgkeel_database_prefix: str
) -> None:
    service = render_into(tmp_path / "rendered", cookiecutter_config)  # pgkeel: wheels/
    context = tmp_path / "context"
    _copy_context(service, context)
    image = dockerfile.build(context / "Dockerfile", context, tmp_path / "image")
    name = f"{pgkeel_database_prefix}_dockerfile"
    database = create_database(pgkeel_server_url, name).render_as_string(hide_password=False)
    port = str(free_port())
    server = None
    try:
        migrated = image.run(["alembic", "upgrade", "head"], MIGRATION_DATABASE_URL=database)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        refused = image.run(image.cmd, DATABASE_URL=database, HOST="127.0.0.1", PORT=port)
        assert refused.returncode == 1  # the superuser bypasses row-level security
        assert "bypasses row-level security" in refused.stderr
        assert "Traceback" not in refused.stderr
        on_purpose = {"ALLOW_RLS_BYPASS": "1", "HOST": "127.0.0.1", "PORT": port}
        server = image.start(image.cmd, DATABASE_URL=database, **on_purpose)
        assert _wait_for(f"http://127.0.0.1:{port}/healthz", server) == 200
        health = image.run(image.healthcheck, PORT=port)
        assert health.returncode == 0, health.stdout + health.stderr
        ready = _wait_for(f"http://127.0.0.1:{port}/readyz", server)
        assert ready == 503  # the server's superuser bypasses row-level security: not ready
    finally:
        if server is not None:
            server.terminate()
            server.communicate(timeout=30)
        drop_database(pgkeel_server_url, name)
