"""Offline SQL that fails half-way never drops a unique rule nor records the migration as done.

``alembic upgrade --sql`` is run by ``psql``, which by default goes on after an error: a failed
``CREATE UNIQUE INDEX CONCURRENTLY`` and the failed validity check were followed by the drop of
the old rule, the rename of the INVALID index to its name and the ``alembic_version`` update.
Each script now starts with ``\\set ON_ERROR_STOP on``, and the drop of a replaced rule runs
only inside the statement that checks its replacement is valid, for a client that goes on anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic_project import Project, squawk
from sqlalchemy.exc import IntegrityError

MakeProject = Callable[[str], Project]
STOP_ON_ERROR = "\\set ON_ERROR_STOP on\n"
RULE = """
    SELECT indisvalid::text || ' ' || coalesce(pg_get_expr(indpred, indrelid), '-') FROM pg_index
    WHERE indexrelid = to_regclass('uq_accounts_code')
"""
"""Whether ``uq_accounts_code`` is valid, and its predicate."""
OLD_RULE = ["true ((code)::text <> 'dup'::text)"]
NEW_RULE = ["true -"]
NOT_DROPPED = "pgkeel: uq_accounts_code on accounts is not dropped"


def _psql_path() -> str:
    found = shutil.which("psql")
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
        assert candidates, "psql is needed to run the offline SQL"
        found = str(candidates[-1])
    return found


def _psql(project: Project, script: str) -> subprocess.CompletedProcess[str]:
    """The script through ``psql`` as a DBA runs it: no ``ON_ERROR_STOP`` given, no psqlrc."""
    url = project.url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(
        [_psql_path(), "--no-psqlrc", "-q", "-d", url],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGOPTIONS": ""},
    )


def _replacement_that_fails(make_project: MakeProject) -> tuple[Project, str]:
    """A rule that loses its predicate, two rows the new rule forbids; the offline script."""
    project = make_project("offline_failures")
    project.revision("create accounts")
    project.upgrade()
    project.execute(
        "INSERT INTO accounts (email, code) SELECT 'a' || n || '@example.com', 'c' || n"
        " FROM generate_series(1, 50) n;"
        "INSERT INTO accounts (email, code)"
        " VALUES ('d1@example.com', 'dup'), ('d2@example.com', 'dup')"
    )
    project.use("models_v2")
    (path,) = project.revisions("code unique everywhere")
    assert "op.drop_replaced_unique(" in path.read_text()
    return project, project.offline_sql("0001:head")


def _assert_rule_kept(project: Project) -> None:
    assert project.query(RULE) == OLD_RULE
    assert project.query("SELECT version_num FROM alembic_version") == ["0001"]
    with pytest.raises(IntegrityError, match="uq_accounts_code"):
        project.execute("INSERT INTO accounts (email, code) VALUES ('x@example.com', 'c1')")


def test_the_offline_script_stops_at_the_first_error(make_project: MakeProject) -> None:
    project, script = _replacement_that_fails(make_project)
    assert script.startswith(STOP_ON_ERROR)
    result = _psql(project, script)
    assert result.returncode != 0
    assert "could not create unique index" in result.stderr
    assert NOT_DROPPED not in result.stderr  # psql stopped at the build
    _assert_rule_kept(project)


def test_a_client_that_goes_on_after_errors_keeps_the_rule(make_project: MakeProject) -> None:
    project, script = _replacement_that_fails(make_project)
    result = _psql(project, script.removeprefix(STOP_ON_ERROR))  # as if psql ignored the line
    assert "could not create unique index" in result.stderr
    assert NOT_DROPPED in result.stderr  # the check and the drop are one statement
    _assert_rule_kept(project)  # the rename failed too, and the version update with it


def test_without_the_duplicates_the_same_script_replaces_the_rule(
    make_project: MakeProject,
) -> None:
    project, script = _replacement_that_fails(make_project)
    assert _psql(project, script).returncode != 0
    project.execute("DELETE FROM accounts WHERE email = 'd2@example.com'")
    result = _psql(project, script)
    assert result.returncode == 0, result.stderr
    assert project.query(RULE) == NEW_RULE
    assert project.query("SELECT version_num FROM alembic_version") == ["0002"]
    assert project.query("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_new'") == [0]
    project.check()
    status, report = squawk(project)  # squawk reads past the psql meta-command
    assert status == 0, report
