"""Bad answers end with one line that says what to type instead, and leave nothing on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.template.conftest import TEMPLATE, run_cookiecutter_cli

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
        ["project_slug=alembic"],
        "project_slug 'alembic' is reserved: it is the name of a distribution",
        "type project_slug=alembic_service instead",
        id="alembic",
    ),
    pytest.param(
        ["project_slug=pgkeel"],
        "project_slug 'pgkeel' is reserved: it is the name of a distribution",
        "type project_slug=pgkeel_service instead",
        id="pgkeel",
    ),
    pytest.param(
        ["project_slug=sqlalchemy"],
        "project_slug 'sqlalchemy' is reserved: it is the name of a distribution",
        "type project_slug=sqlalchemy_service instead",
        id="sqlalchemy",
    ),
    *[
        pytest.param(
            [f"project_slug={name}"],
            f"project_slug {name!r} is reserved: it is the name of a distribution the service "
            "depends on (directly or through another one)",
            f"type project_slug={name}_service instead",
            id=f"transitive-{name}",
        )
        for name in ("requests", "greenlet", "typing_extensions", "pydantic_core")
    ],
    pytest.param(
        ["project_slug=" + "a" * 60],
        f"project_slug '{'a' * 60}' is 60 bytes: the runtime role {'a' * 60}_app would exceed",
        f"type project_slug={'a' * 59} instead",
        id="role-name-over-63-bytes",
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
        "type one of: yes, no (or true/false, 1/0, on/off; e.g. multi_tenant=yes)",
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
        ["project_slug=ledger/billing"],
        "project_slug 'ledger/billing' is not a valid Python identifier",
        "type project_slug=ledger_billing instead",
        id="slug-with-a-slash",
    ),
    pytest.param(
        ["project_name="],
        "project_name is empty",
        "type a name such as 'Billing Service'",
        id="empty-name",
    ),
    pytest.param(
        ["project_name=!!!"],
        "project_name '!!!' has no letter or digit to name the service by",
        "type a name such as 'Billing Service'",
        id="punctuation-only-name",
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
    assert "Traceback" not in result.stderr
    assert list(output.iterdir()) == []


def test_every_problem_is_reported_at_once(tmp_path: Path, cookiecutter_config: Path) -> None:
    result = run_cookiecutter_cli(
        tmp_path, cookiecutter_config, "project_slug=alembic", "postgres_version=9"
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


ANSWERS_UNDERSTOOD = [
    (["project_name=Café Großhandel", "multi_tenant=Yes"], "cafe_grosshandel", True),
    (["project_slug=calendar", "multi_tenant=true"], "calendar", True),
    (["project_slug=email", "multi_tenant=1"], "email", True),
    (["project_name=Ledger", "multi_tenant=False"], "ledger", False),
]


@pytest.mark.parametrize("case", ANSWERS_UNDERSTOOD, ids=lambda case: case[1])
def test_answers_people_type_are_understood(
    tmp_path: Path,
    cookiecutter_config: Path,
    pgkeel_wheel: Path,
    case: tuple[list[str], str, bool],
) -> None:
    answers, slug, tenants = case
    wheel = f"pgkeel_requirement={pgkeel_wheel}"
    result = run_cookiecutter_cli(tmp_path, cookiecutter_config, *answers, "http=none", wheel)
    assert result.returncode == 0, result.stderr
    service = tmp_path / slug
    assert (service / "app" / "models" / "tenant.py").is_file() is tenants
    assert f'name = "{slug}"' in (service / "pyproject.toml").read_text()


def test_a_long_name_gives_a_slug_refused_with_a_short_one(
    tmp_path: Path, cookiecutter_config: Path
) -> None:
    result = run_cookiecutter_cli(tmp_path, cookiecutter_config, "project_name=" + "Ledger " * 12)
    assert result.returncode != 0
    assert "would exceed PostgreSQL's 63 bytes" in result.stderr
    suggested = result.stderr.split("type project_slug=")[1].split()[0]
    assert len(suggested) <= 59
    assert suggested.startswith("ledger_ledger")


def test_a_slug_that_climbs_out_of_the_output_directory_makes_nothing_anywhere(
    tmp_path: Path, cookiecutter_config: Path
) -> None:
    output = tmp_path / "deep" / "out"
    output.mkdir(parents=True)
    result = run_cookiecutter_cli(output, cookiecutter_config, "project_slug=../../escaped")
    assert result.returncode == 1
    assert "type project_slug=escaped instead" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == [
        Path("deep"),
        Path("deep/out"),
    ]


def test_the_python_api_raises_cookiecutters_hook_failure_and_writes_nothing(
    tmp_path: Path, cookiecutter_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FailedHookException, match="Nothing was written: 2 answers to change"):
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path),
            config_file=str(cookiecutter_config),
            extra_context={"project_slug": "a/b", "http": "flask"},
        )
    errors = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in errors] == ["project_slug", "http"]
    assert list(tmp_path.iterdir()) == []


def test_a_failed_post_generation_step_says_what_and_leaves_nothing(
    tmp_path: Path, cookiecutter_config: Path
) -> None:
    """A pgkeel that cannot be fetched fails after rendering: the service is removed."""
    output = tmp_path / "out"
    output.mkdir()
    missing = f"git+file://{tmp_path / 'no-such-repository.git'}"
    result = run_cookiecutter_cli(output, cookiecutter_config, f"pgkeel_requirement={missing}")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "git clone file://" in errors[0]
    assert "Fix: check pgkeel_requirement" in errors[0]
    assert "Traceback" not in result.stderr
    assert list(output.iterdir()) == []
