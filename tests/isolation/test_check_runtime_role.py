"""``pgkeel check --runtime-url``: the runtime-role check from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from pgkeel import cli
from pgkeel.database import conninfo
from tests.databases import drop_role
from tests.isolation.conftest import Seed

ONLY_THE_ROLE = ["--skip", "rules", "--skip", "drift", "--skip", "squawk"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service directory with an Alembic configuration (the other steps are skipped)."""
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    status = cli.main(["check", *args])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def url_text(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture
def bypassing_role(
    pgkeel_server_url: URL, pgkeel_database_prefix: str, seeded: Seed
) -> Iterator[str]:
    """A login role that is neither superuser nor owner, but has BYPASSRLS."""
    role = f"{pgkeel_database_prefix}_check_bypass"
    with psycopg.connect(conninfo(pgkeel_server_url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER BYPASSRLS").format(sql.Identifier(role))
        )
    yield role
    drop_role(pgkeel_server_url, role)


@pytest.mark.usefixtures("project", "seeded")
def test_the_runtime_role_passes(
    isolation_db: URL, runtime_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = url_text(isolation_db.set(username=runtime_role, password=None))
    assert check(capsys, *ONLY_THE_ROLE, "--runtime-url", runtime) == (
        0,
        ["pgkeel check: runtime-role: ok"],
        "",
    )


@pytest.mark.usefixtures("project", "seeded")
def test_a_superuser_that_owns_the_tables_fails(
    isolation_db: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = check(capsys, *ONLY_THE_ROLE, "--runtime-url", url_text(isolation_db))
    assert status == 1
    assert out[0] == "pgkeel check: runtime-role: FAILED"
    rules = [line.split("]")[0].strip() for line in out[1:] if line.lstrip().startswith("[")]
    assert rules[:2] == ["[superuser", "[bypassrls"]  # the bootstrap superuser has both
    assert set(rules[2:]) == {"[owner"}  # one line per tenant table
    assert any("'public.customers'" in line and "GRANT SELECT, INSERT" in line for line in out)


@pytest.mark.usefixtures("project")
def test_bypassrls_is_named(
    isolation_db: URL, bypassing_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = url_text(isolation_db.set(username=bypassing_role, password=None))
    status, out, _ = check(capsys, *ONLY_THE_ROLE, "--runtime-url", runtime)
    assert status == 1
    assert out[0] == "pgkeel check: runtime-role: FAILED"
    assert out[1].startswith(f"    [bypassrls] role '{bypassing_role}' has BYPASSRLS. Fix:")
    assert len(out) == 2


@pytest.mark.usefixtures("project")
def test_without_a_runtime_url_there_is_no_role_step(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = check(capsys, *ONLY_THE_ROLE)
    assert status == 0
    assert not [line for line in out if "runtime-role" in line]


@pytest.mark.usefixtures("project")
def test_an_unreachable_runtime_url_is_a_finding(capsys: pytest.CaptureFixture[str]) -> None:
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    status, out, _ = check(capsys, *ONLY_THE_ROLE, "--runtime-url", unreachable)
    assert status == 1
    assert out[0] == "pgkeel check: runtime-role: FAILED"
    assert out[1].startswith("    the runtime role could not be checked:")


@pytest.mark.usefixtures("project")
def test_a_runtime_url_that_is_not_postgresql_is_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = check(capsys, *ONLY_THE_ROLE, "--runtime-url", "sqlite:///x.db")
    assert (status, out) == (1, [])
    assert err.startswith("pgkeel: error: --runtime-url points at 'sqlite'")


@pytest.fixture
def leaking_objects(owner_engine: Engine, runtime_role: str, seeded: Seed) -> Iterator[None]:
    """A superuser's view, definer function and extra policy, committed, dropped afterwards."""
    statements = [
        "CREATE VIEW cli_all_invoices AS SELECT * FROM invoices",
        f'GRANT SELECT ON cli_all_invoices TO "{runtime_role}"',
        (
            "CREATE FUNCTION cli_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER "
            "AS 'SELECT count(*) FROM invoices'"
        ),
        "CREATE POLICY cli_open ON tags FOR SELECT USING (true)",
    ]
    with owner_engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    yield
    with owner_engine.begin() as connection:
        connection.execute(text("DROP VIEW cli_all_invoices"))
        connection.execute(text("DROP FUNCTION cli_count()"))
        connection.execute(text("DROP POLICY cli_open ON tags"))


@pytest.mark.usefixtures("project", "leaking_objects")
def test_objects_that_leak_are_named_with_the_fix(
    isolation_db: URL, runtime_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = url_text(isolation_db.set(username=runtime_role, password=None))
    status, out, _ = check(capsys, *ONLY_THE_ROLE, "--runtime-url", runtime)
    assert status == 1
    assert out[0] == "pgkeel check: runtime-role: FAILED"
    findings = {line.split("]")[0].strip("[ ") for line in out[1:] if line.lstrip().startswith("[")}
    assert findings == {"definer-view", "definer-function", "extra-policy"}
    text_out = "\n".join(out)
    assert "view 'public.cli_all_invoices' reads 'public.invoices'" in text_out
    assert "ALTER FUNCTION cli_count() SECURITY INVOKER" in text_out
    assert "DROP POLICY cli_open ON public.tags" in text_out
