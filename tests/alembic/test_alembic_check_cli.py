"""``pgkeel check``: rules, drift and squawk, in the service's directory, non-zero on a finding."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic_project import Project
from test_alembic_environment import pyproject_only

from pgkeel import cli

MakeProject = Callable[[str], Project]

UNSAFE_MIGRATION = '''"""an index written by hand, without CONCURRENTLY"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("idx_books_title", "books", ["title"])


def downgrade() -> None:
    op.drop_index("idx_books_title", table_name="books")
'''


def run_check(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> tuple[int, str, str]:
    monkeypatch.chdir(project.directory)
    capsys.readouterr()  # what the project's own alembic commands printed
    status = cli.main(["check", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_clean_project_passes(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("tenancy")
    project.revision("create invoices")
    project.upgrade()
    status, out, err = run_check(project, monkeypatch, capsys)
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "pgkeel check: rules: ok",
        "pgkeel check: drift: ok",
        "pgkeel check: squawk: ok",
    ]


def test_rule_violations_fail_the_check(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("broken")
    status, out, _ = run_check(project, monkeypatch, capsys, "--skip", "drift")
    assert status == 1
    assert "pgkeel check: rules: FAILED" in out
    assert "    the models: 6 problems." in out
    assert "    [uuid-primary-key] event_log.id: integer primary key (INTEGER)" in out
    assert "pgkeel check: squawk: ok" in out


def test_drift_fails_the_check(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("soft_delete")
    project.revision("create accounts")
    project.upgrade()
    project.use("models_v2")
    status, out, _ = run_check(project, monkeypatch, capsys, "--skip", "squawk")
    assert status == 1
    assert "pgkeel check: rules: ok" in out
    assert "pgkeel check: drift: FAILED" in out
    # The new predicate is narrower (empty emails no longer unique): the drift is refused.
    assert "[drop-unique] accounts.uq_accounts_email:" in out


def test_drift_without_a_database_names_the_way_to_leave_it_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(pyproject_only(tmp_path))
    status = cli.main(["check"])
    out = capsys.readouterr().out
    assert status == 1
    assert "pgkeel check: drift: FAILED" in out
    assert "No database to migrate." in out
    assert "Or leave this step out: pgkeel check --skip drift." in out
    assert "pgkeel check: rules: ok" in out  # the steps that need no database still ran


def test_squawk_findings_fail_the_check(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("fk_index")
    project.revision("create books")
    versions = project.directory / "migrations" / "versions"
    (versions / "0002_title_index.py").write_text(UNSAFE_MIGRATION)
    status, out, _ = run_check(project, monkeypatch, capsys, "--skip", "drift")
    assert status == 1
    assert "pgkeel check: squawk: FAILED" in out
    assert "0002_title_index.sql:" in out
    assert "require-concurrent-index-creation" in out
    excluded = ("--squawk-exclude", "require-concurrent-index-creation")
    status, out, _ = run_check(project, monkeypatch, capsys, "--skip", "drift", *excluded)
    assert (status, out.splitlines()[-1]) == (0, "pgkeel check: squawk: ok")


def test_configuration_from_pyproject_or_option(
    make_project: MakeProject,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    project = make_project("fk_index")
    project.revision("create books")
    project.upgrade()
    ini = project.directory / "alembic.ini"
    settings = ini.read_text().replace("[alembic]", "[tool.alembic]")
    settings = "\n".join(
        f'{key.strip()} = "{value.strip()}"' if "=" in line else line
        for line in settings.splitlines()
        for key, _, value in [line.partition("=")]
    )
    (project.directory / "pyproject.toml").write_text(
        settings.replace("%(here)s", str(project.directory))
    )
    moved = tmp_path / "elsewhere.ini"
    moved.write_text(ini.read_text().replace("%(here)s", str(project.directory)))
    ini.unlink()
    status, out, _ = run_check(project, monkeypatch, capsys, "--skip", "squawk")
    assert (status, out.splitlines()[:2]) == (
        0,
        ["pgkeel check: rules: ok", "pgkeel check: drift: ok"],
    )
    (project.directory / "pyproject.toml").unlink()
    status, out, _ = run_check(
        project, monkeypatch, capsys, "--config", str(moved), "--skip", "squawk"
    )
    assert status == 0, out


def test_no_configuration_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"pgkeel: error: No Alembic configuration in {tmp_path}: tried alembic.ini"
    )
    assert "--config path/to/alembic.ini" in err


def test_the_console_script_and_the_alembic_entry_point(make_project: MakeProject) -> None:
    """The real commands in a subprocess: Alembic finds the plugin through its entry point."""
    project = make_project("fk_index")
    bin_dir = Path(sys.executable).parent
    example = Path(__file__).parent / "examples" / "fk_index"
    ini = project.directory / "alembic.ini"
    ini.write_text(
        ini.read_text().replace(
            "example_models = pgkeel_example_fk_index_models", "example_models = models"
        )
        + f"prepend_sys_path = {example}\n"
    )
    alembic = subprocess.run(
        [str(bin_dir / "alembic"), "revision", "--autogenerate", "-m", "create books"],
        cwd=project.directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert alembic.returncode == 0, alembic.stderr
    assert [path.name for path in project.versions()] == ["0001_create_books.py"]
    upgrade = subprocess.run(
        [str(bin_dir / "alembic"), "upgrade", "head"],
        cwd=project.directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    check = subprocess.run(
        [str(bin_dir / "pgkeel"), "check"],
        cwd=project.directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1] == "pgkeel check: squawk: ok"
