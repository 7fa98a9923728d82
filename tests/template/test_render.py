"""Every option combination renders a complete, lint-clean service; no database needed."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.template.conftest import (
    COMBINATIONS,
    CONTEXT,
    MULTI_TENANT,
    POSTGRES_VERSIONS,
    ROOT,
    TEMPLATE,
    Render,
    python_files,
    render_into,
)

TENANT_FILES = ["app/models/tenant.py", "tests/test_tenant_isolation.py"]
API_FILES = [
    "app/api/__init__.py",
    "app/api/__main__.py",
    "app/api/main.py",
    "app/api/database.py",
    "app/api/health.py",
    "app/api/observability.py",
    "app/api/problems.py",
    "app/api/projects.py",
    "app/api/schemas.py",
    "tests/api/conftest.py",
    "tests/api/test_api_health.py",
    "tests/api/test_api_projects.py",
]
API_TENANT_FILES = ["app/api/tenancy.py", "app/api/tenants.py", "tests/api/test_api_tenants.py"]
COMMON_FILES = [
    "pyproject.toml",
    "README.md",
    "Makefile",
    "Dockerfile",
    "docker-compose.yml",
    "deploy/postgres/10-app-role.sh",
    ".gitignore",
    ".env.example",
    "app/__init__.py",
    "app/__main__.py",
    "app/core/config.py",
    "app/core/database.py",
    "app/models/__init__.py",
    "app/models/base.py",
    "app/models/user.py",
    "app/models/project.py",
    "app/alembic/env.py",
    "app/alembic/script.py.mako",
    "app/alembic/versions/0001_initial.py",
    "tests/conftest.py",
    "tests/test_migrations.py",
    "tests/test_standards.py",
    "tests/test_soft_delete.py",
]


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path, pgkeel_wheel: Path
) -> dict[tuple[str, str], Path]:
    """One rendered service per (multi_tenant, postgres_version), shared by this module."""
    rendered = {}
    for multi_tenant, version in COMBINATIONS:
        output = tmp_path_factory.mktemp(f"render-{multi_tenant}-{version}")
        rendered[multi_tenant, version] = render_into(
            output,
            cookiecutter_config,
            multi_tenant=multi_tenant,
            postgres_version=version,
            pgkeel_requirement=str(pgkeel_wheel),
        )
    return rendered


def test_no_input_gives_a_multi_tenant_billing_service(render: Render) -> None:
    service = render()
    assert service.name == "billing_service"
    assert (service / "app/models/tenant.py").is_file()
    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "billing_service"
    assert (
        f"postgres:{CONTEXT['postgres_version']}-alpine"
        in (service / "docker-compose.yml").read_text()
    )


def test_the_default_postgres_version_is_a_supported_one() -> None:
    assert CONTEXT["postgres_version"] in POSTGRES_VERSIONS


def test_the_version_prompt_lists_exactly_the_supported_versions() -> None:
    prompt = CONTEXT["__prompts__"]["postgres_version"]
    listed = [word.strip(",:") for word in prompt.split() if word.strip(",:").isdigit()]
    assert sorted(listed) == sorted(POSTGRES_VERSIONS)


@pytest.mark.parametrize(("multi_tenant", "version"), COMBINATIONS)
def test_every_combination_renders_its_files(
    services: dict[tuple[str, str], Path], multi_tenant: str, version: str
) -> None:
    service = services[multi_tenant, version]
    for name in COMMON_FILES:
        assert (service / name).is_file(), name
    for name in TENANT_FILES + API_TENANT_FILES:
        assert (service / name).is_file() is (multi_tenant == "yes"), name
    for name in API_FILES:
        assert (service / name).is_file(), name


@pytest.mark.parametrize(("multi_tenant", "version"), COMBINATIONS)
def test_no_template_syntax_is_left(
    services: dict[tuple[str, str], Path], multi_tenant: str, version: str
) -> None:
    service = services[multi_tenant, version]
    for path in service.rglob("*"):
        if path.is_file() and path.suffix != ".whl":
            text = path.read_text()
            for marker in ("{{", "{%", "cookiecutter."):
                assert marker not in text, f"{path.relative_to(service)} contains {marker!r}"


@pytest.mark.parametrize(("multi_tenant", "version"), COMBINATIONS)
def test_python_files_compile(
    services: dict[tuple[str, str], Path], multi_tenant: str, version: str
) -> None:
    for path in python_files(services[multi_tenant, version]):
        compile(path.read_text(), str(path), "exec")


@pytest.mark.parametrize("multi_tenant", ["yes", "no"])
def test_only_a_multi_tenant_service_mentions_tenants(
    services: dict[tuple[str, str], Path], multi_tenant: str
) -> None:
    service = services[multi_tenant, POSTGRES_VERSIONS[0]]
    models = (service / "app/models/__init__.py").read_text()
    assert ("Tenant" in models) is (multi_tenant == "yes")
    code = "\n".join(path.read_text() for path in python_files(service))
    assert ("tenant_context" in code) is (multi_tenant == "yes")
    readme = (service / "README.md").read_text()
    for name in ("X-Tenant-ID", "tenancy.py"):
        assert (name in readme) is (multi_tenant == "yes"), name


@pytest.mark.parametrize(("multi_tenant", "version"), COMBINATIONS)
def test_pyproject_configures_alembic_pytest_and_the_postgres_image(
    services: dict[tuple[str, str], Path], multi_tenant: str, version: str
) -> None:
    pyproject = tomllib.loads((services[multi_tenant, version] / "pyproject.toml").read_text())
    assert pyproject["tool"]["alembic"]["script_location"] == "%(here)s/app/alembic"
    pytest_options = pyproject["tool"]["pytest"]["ini_options"]
    assert pytest_options["pgkeel_schema"] == "app.models:Base.metadata"
    assert pytest_options["pgkeel_image"] == f"postgres:{version}-alpine"
    runtime = " ".join(pyproject["project"]["dependencies"])
    for name in ("pgkeel[alembic]", "SQLAlchemy", "alembic", "psycopg"):
        assert name in runtime
    dev = " ".join(pyproject["project"]["optional-dependencies"]["dev"])
    for name in ("pytest", "testcontainers", "ruff", "mypy"):
        assert name in dev


def test_pgkeel_comes_from_a_wheel_that_uv_takes_by_a_relative_path(
    render: Render, pgkeel_wheel: Path
) -> None:
    service = render()
    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    assert "pgkeel[alembic]" in pyproject["project"]["dependencies"]
    source = f"wheels/{pgkeel_wheel.name}"
    assert pyproject["tool"]["uv"]["sources"]["pgkeel"] == {"path": source}
    assert (service / source).read_bytes() == pgkeel_wheel.read_bytes()
    assert not (service / "wheels/.gitignore").exists()  # the wheel is part of the service
    lock = tomllib.loads((service / "uv.lock").read_text())
    (pgkeel,) = [package for package in lock["package"] if package["name"] == "pgkeel"]
    assert pgkeel["source"] == {"path": source}


def test_a_version_range_takes_pgkeel_from_the_index(render: Render) -> None:
    service = render(pgkeel_requirement=">=0.1,<0.2")
    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    assert "pgkeel[alembic]>=0.1,<0.2" in pyproject["project"]["dependencies"]
    assert "uv" not in pyproject.get("tool", {})
    assert list((service / "wheels").glob("*.whl")) == []


def test_the_default_builds_pgkeel_from_the_templates_repository(
    tmp_path: Path, cookiecutter_config: Path
) -> None:
    service = render_into(tmp_path, cookiecutter_config)
    (wheel,) = (service / "wheels").glob("pgkeel-*.whl")
    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["sources"]["pgkeel"] == {"path": f"wheels/{wheel.name}"}
    assert_no_machine_path(service, tmp_path, ROOT, Path.home())


def assert_no_machine_path(service: Path, *paths: Path) -> None:
    """No rendered file names ``paths`` (the rendering machine's directories) or file://."""
    needles = [str(path).encode() for path in paths] + [b"file://"]
    for path in service.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, f"{path.relative_to(service)} holds {needle!r}"


@pytest.mark.parametrize("multi_tenant", ["yes", "no"])
def test_generated_code_passes_ruff(
    services: dict[tuple[str, str], Path], multi_tenant: str
) -> None:
    service = services[multi_tenant, POSTGRES_VERSIONS[0]]
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=service,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


NAMES_RUFF_WOULD_FLAG = [
    pytest.param("Billing \u2013 Service", id="en-dash"),
    pytest.param("Ledger \U0001f4d2 of O'Brien & Sons <EU>", id="emoji-apostrophe-html"),
    pytest.param("L" * 80, id="one-line"),
    pytest.param("Long" + " name" * 18, id="parenthesized"),
    pytest.param("Very long name " * 10, id="longer-than-a-line"),
]


@pytest.mark.parametrize("name", NAMES_RUFF_WOULD_FLAG)
def test_any_accepted_name_gives_lint_clean_code(render: Render, name: str) -> None:
    """The name is in the code once, as a literal ruff accepts: no RUF001, E501 or reformat."""
    service = render(project_name=name, project_slug="named")
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=service,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    module = ast.parse((service / "app/__init__.py").read_text())
    (assignment,) = [node for node in module.body if isinstance(node, ast.Assign)]
    assert ast.literal_eval(assignment.value) == name
    assert name not in (service / "app/api/main.py").read_text()


def test_the_post_generation_hook_prints_the_next_three_commands(
    render: Render, capfd: pytest.CaptureFixture[str]
) -> None:
    service = render(project_name="Ledger")
    out = capfd.readouterr().out
    commands = [line.split("#")[0].strip() for line in out.splitlines() if line.startswith("    ")]
    # Rendered elsewhere than the shell's directory (as with -o): the full path gets there.
    assert commands == [f"cd {service}", "make install", "make test"]


FAKE_ALEMBIC = "import json, sys\nprint(json.dumps(sys.argv[1:]))\n"


def test_make_revision_passes_each_x_value_before_the_command(
    render: Render, tmp_path: Path
) -> None:
    """Alembic takes ``-x`` before ``revision``; quotes, spaces and SQL reach it as typed."""
    service = render(project_name="Ledger")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    alembic = bin_dir / "alembic"
    alembic.write_text(f"#!{sys.executable}\n{FAKE_ALEMBIC}")
    alembic.chmod(0o755)
    x = "backfill=projects.budget=length(name) * 10 acknowledge=invoices rename=orders.qty:qty"
    ran = subprocess.run(
        ["make", "-s", "revision", f"BIN={bin_dir}", """m=it's "done" (really)""", f"x={x}"],
        cwd=service,
        capture_output=True,
        text=True,
        check=True,
    )
    passed = json.loads(ran.stdout.splitlines()[-1])
    assert passed == [
        *("-x", "backfill=projects.budget=length(name) * 10"),
        *("-x", "acknowledge=invoices", "-x", "rename=orders.qty:qty"),
        *("revision", "--autogenerate", "-m", """it's "done" (really)"""),
    ]
    usage = subprocess.run(
        ["make", "-s", "revision", f"BIN={bin_dir}"],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2
    assert "usage: make revision m=" in usage.stdout


@pytest.mark.parametrize("multi_tenant", MULTI_TENANT)
def test_http_none_renders_the_service_without_an_api(render: Render, multi_tenant: str) -> None:
    service = render(multi_tenant=multi_tenant, http="none")
    assert not (service / "app/api").exists()
    assert not (service / "tests/api").exists()
    pyproject = (service / "pyproject.toml").read_text()
    for name in ("fastapi", "uvicorn", "httpx", "asyncio"):
        assert name not in pyproject
    code = "\n".join(path.read_text() for path in python_files(service))
    assert "fastapi" not in code
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_default_service_serves_http_with_the_tenant_header(render: Render) -> None:
    service = render()
    assert CONTEXT["http"] == "fastapi"
    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    runtime = " ".join(pyproject["project"]["dependencies"])
    for name in ("fastapi", "uvicorn", "SQLAlchemy[asyncio]", "pydantic"):
        assert name in runtime
    assert "X-Tenant-ID" in (service / "app/api/tenancy.py").read_text()
    health = (service / "app/api/health.py").read_text()
    assert '"/healthz"' in health
    assert '"/readyz"' in health


def test_make_pgkeel_wheel_puts_another_wheel_in_and_names_it(
    render: Render, tmp_path: Path
) -> None:
    """The wheel is replaced, kept for git (no ``*`` .gitignore) and named in pyproject.toml."""
    service = render(project_name="Ledger")
    (old,) = (service / "wheels").glob("pgkeel-*.whl")
    newer = tmp_path / "elsewhere" / "pgkeel-9.9.9-py3-none-any.whl"
    newer.parent.mkdir()
    newer.write_bytes(old.read_bytes())
    (service / "wheels/.gitignore").write_text("*\n")  # what uv build leaves
    subprocess.run(  # UV=/bin/true: the lock and the install are not this test's subject
        ["make", "pgkeel-wheel", f"from={newer}", "UV=/bin/true"],
        cwd=service,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(path.name for path in (service / "wheels").iterdir()) == [
        "README.md",
        newer.name,
    ]
    pyproject = (service / "pyproject.toml").read_text()
    assert f'pgkeel = {{ path = "wheels/{newer.name}" }}' in pyproject
    assert old.name not in pyproject


@pytest.mark.parametrize("source", ["README.md", "a project that is not pgkeel"])
def test_make_pgkeel_wheel_refuses_what_is_not_a_pgkeel_wheel_and_changes_nothing(
    render: Render, tmp_path: Path, source: str
) -> None:
    service = render(project_name="Ledger")
    wheels = sorted(path.name for path in (service / "wheels").iterdir())
    pyproject = (service / "pyproject.toml").read_text()
    if source == "README.md":
        given = tmp_path / "README.md"
        given.write_text("# another project\n")
    else:
        given = tmp_path / "other"
        given.mkdir()
        (given / "pyproject.toml").write_text(
            '[project]\nname = "other"\nversion = "1.0"\n'
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        )
        (given / "other").mkdir()
        (given / "other" / "__init__.py").write_text("")
    uv = tmp_path / "uv"
    uv.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m uv "$@"\n')
    uv.chmod(0o755)
    result = subprocess.run(
        ["make", "-s", "pgkeel-wheel", f"from={given}", f"UV={uv}"],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: {given} gives no pgkeel wheel" in result.stdout + result.stderr
    assert "nothing was changed" in result.stdout + result.stderr
    assert sorted(path.name for path in (service / "wheels").iterdir()) == wheels
    assert (service / "pyproject.toml").read_text() == pyproject


def test_the_template_applied_again_keeps_one_pgkeel_source(
    tmp_path: Path, cookiecutter_config: Path, pgkeel_wheel: Path
) -> None:
    """``cookiecutter -f -s`` over a service keeps its pyproject.toml valid, naming one wheel."""
    answers = {"project_name": "Ledger", "pgkeel_requirement": str(pgkeel_wheel)}
    service = render_into(tmp_path, cookiecutter_config, **answers)
    again = cookiecutter(
        str(TEMPLATE),
        no_input=True,
        extra_context=answers,
        output_dir=str(tmp_path),
        config_file=str(cookiecutter_config),
        overwrite_if_exists=True,
        skip_if_file_exists=True,
    )
    assert Path(again) == service
    text = (service / "pyproject.toml").read_text()
    pyproject = tomllib.loads(text)
    assert pyproject["tool"]["uv"]["sources"]["pgkeel"] == {"path": f"wheels/{pgkeel_wheel.name}"}
    assert text.count("[tool.uv.sources]") == 1
    assert text.count("pgkeel = { path =") == 1


TARGETS_OF_THE_VENV = [
    "test", "lint", "format", "typecheck", "standards", "doctor", "ci", "db", "db-stop",
    "migrate", "revision", "run",
]  # fmt: skip


@pytest.mark.parametrize("target", TARGETS_OF_THE_VENV)
def test_a_target_run_before_make_install_says_so_in_one_line(
    services: dict[tuple[str, str], Path], target: str
) -> None:
    service = services["yes", POSTGRES_VERSIONS[0]]
    assert not (service / ".venv").exists()
    result = subprocess.run(
        ["make", "-s", target, "m=add invoices"],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith("does not exist: run `make install` first.  Stop."), line
    assert ".venv/bin/" in line
    assert result.stdout == ""


FAKE_PGKEEL = """\
import sys
if sys.argv[1:3] == ["db", "start"]:
    print("pgkeel: warning: the development server is PostgreSQL 15", file=sys.stderr)
print(" ".join(sys.argv[1:]))
"""


@pytest.mark.parametrize("version", POSTGRES_VERSIONS)
def test_make_db_starts_the_server_for_the_services_postgres_version(
    services: dict[tuple[str, str], Path], tmp_path: Path, version: str
) -> None:
    """``pgkeel db start`` is told the target version: its warning reaches stderr, not eval."""
    pgkeel = tmp_path / "pgkeel"
    pgkeel.write_text(f"#!{sys.executable}\n{FAKE_PGKEEL}")
    pgkeel.chmod(0o755)
    result = subprocess.run(
        ["make", "-s", "db", f"BIN={tmp_path}"],
        cwd=services["yes", version],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == ("export DATABASE_URL=db url MIGRATION_DATABASE_URL=db url --owner\n")
    assert result.stderr == "pgkeel: warning: the development server is PostgreSQL 15\n"
    started = subprocess.run(
        ["make", "-n", "db", f"BIN={tmp_path}"],
        cwd=services["yes", version],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"{pgkeel} db start --postgres-version {version} >/dev/null" in started.stdout


@pytest.mark.parametrize("http", ["fastapi", "none"])
def test_make_run_serves_the_api_as_the_readme_says(
    render: Render, tmp_path: Path, http: str
) -> None:
    service = render(http=http)
    readme = (service / "README.md").read_text()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    ran = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", f"BIN={bin_dir}"],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )
    help_text = subprocess.run(
        ["make", "-s", "help"], cwd=service, capture_output=True, text=True, check=True
    ).stdout
    if http == "fastapi":
        assert ran.stdout == f"{bin_dir}/python -m app.api\n"
        assert "python -m app.api" in readme
        assert "make run" in readme
        assert "run         python -m app.api" in help_text
    else:
        assert ran.returncode == 2
        assert "make run" not in readme
        assert "\nrun " not in help_text
