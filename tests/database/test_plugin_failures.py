"""The plugin's failures are errors that name their cause and fix, never a skip or a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pgkeel.database.process import TMPDIR_ENV, scratch_root
from pgkeel.errors import DatabaseError, PgkeelError
from pgkeel.testing.config import PluginConfig
from pgkeel.testing.pgbouncer import PGBOUNCER_ENV, find_pgbouncer

from .test_bad_input import assert_no_internal_traceback, clean_env, inner_pytest


def run_inner(tmp_path: Path, files: dict[str, str], env: dict[str, str]) -> tuple[int, str]:
    """Run pytest on ``files`` written to ``tmp_path``; its exit code and combined output."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


# T1: PGKEEL_PGBOUNCER naming nothing runnable ------------------------------------------------


@pytest.mark.parametrize("value", ["/nonexistent/pgbouncer", "/"])
def test_unrunnable_pgbouncer_setting_is_an_error(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PGBOUNCER_ENV, value)
    with pytest.raises(PgkeelError) as error:
        find_pgbouncer()
    message = str(error.value)
    assert f"{PGBOUNCER_ENV} is {value!r}" in message
    assert "Fix: set PGKEEL_PGBOUNCER to the path of the pgbouncer program" in message


def test_unrunnable_pgbouncer_setting_fails_the_tests_instead_of_skipping(tmp_path: Path) -> None:
    test = "def test_bouncer(pgbouncer_factory):\n    pass\n"
    env = clean_env(**{PGBOUNCER_ENV: "/nonexistent/pgbouncer"})
    code, output = run_inner(tmp_path, {"test_bouncer.py": test}, env)
    assert code != 0
    assert "skipped" not in output
    assert "1 error" in output
    assert "PGKEEL_PGBOUNCER is '/nonexistent/pgbouncer'" in output
    assert_no_internal_traceback(output)


# T2: PGKEEL_TMPDIR naming no usable directory -------------------------------------------------


def test_missing_tmpdir_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TMPDIR_ENV, "/nonexistent/dir")
    with pytest.raises(DatabaseError, match="PGKEEL_TMPDIR is '/nonexistent/dir', which does not"):
        scratch_root()


def test_tmpdir_that_is_a_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "file"
    file.write_text("")
    monkeypatch.setenv(TMPDIR_ENV, str(file))
    with pytest.raises(DatabaseError, match="which is not a directory"):
        scratch_root()


def test_missing_tmpdir_fails_the_session_with_one_message(tmp_path: Path) -> None:
    output = inner_pytest(tmp_path, clean_env(**{TMPDIR_ENV: "/nonexistent/dir"}))
    assert "PGKEEL_TMPDIR is '/nonexistent/dir', which does not exist" in output
    assert "FileNotFoundError" not in output
    assert_no_internal_traceback(output)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only as root")
def test_tmpdir_the_server_user_cannot_enter_names_the_variable(tmp_path: Path) -> None:
    private = Path(tempfile.mkdtemp(prefix="pgkeel-test-private-"))  # 0700: others cannot enter
    try:
        inside = private / "scratch"
        inside.mkdir(mode=0o755)
        output = inner_pytest(tmp_path, clean_env(**{TMPDIR_ENV: str(inside)}))
    finally:
        subprocess.run(["rm", "-rf", str(private)], check=True)
    assert f"cannot enter {private}" in output
    assert "set PGKEEL_TMPDIR to a directory every user can enter, or unset it" in output
    assert "pgkeel db start --dir" not in output
    assert_no_internal_traceback(output)


# T3: a schema builder that leaves a connection to the template open ---------------------------

LEAKING_BUILDER = """
import pytest
from sqlalchemy import create_engine

LEAKED = []


@pytest.fixture(scope="session")
def pgkeel_schema():
    def build(connection):
        connection.exec_driver_sql("CREATE TABLE things (id int)")
        engine = create_engine(connection.engine.url)  # as an Alembic env.py might
        LEAKED.append(engine.connect())

    return build
"""

USES_TWO_MODULE_DATABASES = {
    "test_one.py": "def test_one(db_engine):\n"
    "    with db_engine.connect() as c:\n"
    "        c.exec_driver_sql('SELECT * FROM things')\n",
    "test_two.py": "def test_two(db_url):\n    pass\n",
}


def test_a_builder_that_leaves_a_connection_open_does_not_break_the_copies(tmp_path: Path) -> None:
    files = {"conftest.py": LEAKING_BUILDER, **USES_TWO_MODULE_DATABASES}
    code, output = run_inner(tmp_path, files, dict(os.environ))
    assert code == 0, output
    assert "2 passed" in output
    assert "ObjectInUse" not in output


OPENS_THE_TEMPLATE = """
import psycopg
import pytest

from pgkeel.database import conninfo


@pytest.fixture(scope="session", autouse=True)
def opened(pgkeel_server_url, pgkeel_template_database):
    url = pgkeel_server_url.set(database=pgkeel_template_database)
    with psycopg.connect(conninfo(url)):
        yield
"""


def test_a_connection_to_the_template_fails_with_the_cause_and_fix(tmp_path: Path) -> None:
    files = {
        "conftest.py": OPENS_THE_TEMPLATE,
        "test_two.py": USES_TWO_MODULE_DATABASES["test_two.py"],
    }
    code, output = run_inner(tmp_path, files, dict(os.environ))
    assert code != 0
    assert "cannot be copied" in output
    assert "is being accessed by other users" in output
    assert "Fix: close every connection to the template database" in output
    assert_no_internal_traceback(output)


# T4: a leaked lock fails the waiting test instead of hanging the run -------------------------


def test_throwaway_cluster_has_a_lock_timeout_by_default() -> None:
    config = PluginConfig(url="", schema="", image="")
    assert config.settings() == {"lock_timeout": "60s"}
    mine = PluginConfig(url="", schema="", image="", server_settings="lock_timeout=0")
    assert mine.settings() == {"lock_timeout": "0"}


def test_test_connections_of_a_throwaway_cluster_time_out_on_locks(tmp_path: Path) -> None:
    test = (
        "def test_lock_timeout(db_engine):\n"
        "    with db_engine.connect() as c:\n"
        "        assert c.exec_driver_sql('SHOW lock_timeout').scalar() == '1min'\n"
    )
    code, output = run_inner(tmp_path, {"test_lock.py": test}, clean_env())
    assert code == 0, output
    assert "1 passed" in output
