"""Bad answers end with one line that says what to type instead, and leave nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.template.conftest import run_cookiecutter_cli

BAD_ANSWERS = [
    pytest.param(
        ["project_slug=Billing-Service"],
        "project_slug 'Billing-Service' is not a valid Python identifier and PyPI name",
        "type project_slug=billing_service instead",
        id="not-an-identifier",
    ),
    pytest.param(
        ["project_slug=2fa"],
        "project_slug '2fa' is not a valid Python identifier",
        "type project_slug=service_2fa instead",
        id="starts-with-a-digit",
    ),
    pytest.param(
        ["project_name=42"],
        "project_slug '42' is not a valid Python identifier",
        "type project_slug=service_42 instead",
        id="derived-from-a-number",
    ),
    pytest.param(
        ["project_slug=class"],
        "project_slug 'class' is a Python keyword",
        "type project_slug=class_service instead",
        id="keyword",
    ),
    pytest.param(
        ["project_slug=json"],
        "project_slug 'json' shadows the standard-library module 'json'",
        "type project_slug=json_service instead",
        id="stdlib",
    ),
    pytest.param(
        ["project_name=Test"],
        "project_slug 'test' is reserved: it would shadow the module 'test'",
        "type project_slug=test_service instead",
        id="test",
    ),
    pytest.param(
        ["project_slug=app"],
        "project_slug 'app' is reserved: it would shadow the module 'app' of the service",
        "type project_slug=app_service instead",
        id="app",
    ),
    pytest.param(
        ["project_slug=alembic"],
        "project_slug 'alembic' is reserved: it would shadow the module 'alembic'",
        "type project_slug=alembic_service instead",
        id="alembic",
    ),
    pytest.param(
        ["project_slug=pgkeel"],
        "project_slug 'pgkeel' is reserved: it would shadow the module 'pgkeel'",
        "type project_slug=pgkeel_service instead",
        id="pgkeel",
    ),
    pytest.param(
        ["project_slug=sqlalchemy"],
        "project_slug 'sqlalchemy' is reserved: it would shadow the module 'sqlalchemy'",
        "type project_slug=sqlalchemy_service instead",
        id="sqlalchemy",
    ),
    pytest.param(
        ["postgres_version=12"],
        "postgres_version '12' is not supported",
        "type one of: 18, 17, 16, 15 (e.g. postgres_version=18)",
        id="unknown-postgres-version",
    ),
    pytest.param(
        ["multi_tenant=maybe"],
        "multi_tenant 'maybe' is not supported",
        "type one of: yes, no (e.g. multi_tenant=yes)",
        id="multi-tenant-not-yes-or-no",
    ),
    pytest.param(
        ["http=flask"],
        "http 'flask' is not supported",
        "type one of: fastapi, none (e.g. http=fastapi)",
        id="unknown-http",
    ),
    pytest.param(
        ["pgkeel_requirement=latest"],
        "pgkeel_requirement 'latest' is neither a version range, an absolute path nor a git URL",
        "a version range such as '>=0.1,<0.2'",
        id="requirement-not-a-range",
    ),
    pytest.param(
        ["pgkeel_requirement=/nonexistent/pgkeel"],
        "pgkeel_requirement '/nonexistent/pgkeel' is not a pgkeel checkout or wheel",
        "the absolute path of a pgkeel checkout or wheel",
        id="requirement-not-a-checkout",
    ),
    pytest.param(
        ["pgkeel_requirement=git+ftp://example.invalid/pgkeel.git"],
        "pgkeel_requirement 'git+ftp://example.invalid/pgkeel.git' is neither",
        "a git URL such as git+https://host/pgkeel.git@v0.1.0",
        id="requirement-not-a-git-url",
    ),
    pytest.param(
        ['project_name=Say "hi"', "project_slug=say_hi"],
        "project_name 'Say \"hi\"' contains a quote, a backslash or a control character",
        "type it without them, e.g. 'Say hi'",
        id="quote-in-name",
    ),
]


@pytest.mark.parametrize(("answers", "problem", "fix"), BAD_ANSWERS)
def test_a_bad_answer_fails_with_one_line_and_leaves_nothing(
    tmp_path: Path, cookiecutter_config: Path, answers: list[str], problem: str, fix: str
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    result = run_cookiecutter_cli(output, cookiecutter_config, *answers)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert problem in errors[0]
    assert fix in errors[0]
    assert list(output.iterdir()) == []


def test_every_problem_is_reported_at_once(tmp_path: Path, cookiecutter_config: Path) -> None:
    result = run_cookiecutter_cli(
        tmp_path, cookiecutter_config, "project_slug=json", "postgres_version=9"
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [error.split()[1] for error in errors] == ["project_slug", "postgres_version"]
    assert list(tmp_path.iterdir()) == []


def test_good_answers_render(tmp_path: Path, cookiecutter_config: Path) -> None:
    result = run_cookiecutter_cli(
        tmp_path, cookiecutter_config, "project_name=Ledger Service", "multi_tenant=no"
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ledger_service" / "app" / "models" / "user.py").is_file()
    assert not (tmp_path / "ledger_service" / "app" / "models" / "tenant.py").exists()
