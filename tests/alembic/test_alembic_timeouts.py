"""lock_timeout and statement_timeout in every migration: in its transaction, in autocommit
blocks, offline; a migration that waits for a lock fails instead of queueing the service."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from alembic import command
from alembic_project import Project
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

MakeProject = Callable[[str], Project]

RECORDING_MIGRATION = '''"""record the settings each part of a migration runs with"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(
        "CREATE TABLE seen AS SELECT 'transaction' AS place,"
        " current_setting('lock_timeout') AS lock_timeout,"
        " current_setting('statement_timeout') AS statement_timeout"
    )
    with op.get_context().autocommit_block():
        op.execute(
            "INSERT INTO seen SELECT 'autocommit', current_setting('lock_timeout'),"
            " current_setting('statement_timeout')"
        )
    op.execute(
        "INSERT INTO seen SELECT 'after', current_setting('lock_timeout'),"
        " current_setting('statement_timeout')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE seen")
'''

LOCKED_MIGRATION = '''"""add a column to books (needs an ACCESS EXCLUSIVE lock)"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("books", sa.Column("isbn", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("books", "isbn")
'''


def _project_with(make_project: MakeProject, migration: str) -> Project:
    project = make_project("fk_index")
    project.revision("create books")
    (project.directory / "migrations" / "versions" / "0002_manual.py").write_text(migration)
    return project


def _seen(project: Project) -> list[tuple[str, str, str]]:
    engine = create_engine(project.url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT place, lock_timeout, statement_timeout FROM seen"
            )
            return sorted((row[0], row[1], row[2]) for row in rows)
    finally:
        engine.dispose()


def test_every_part_of_a_migration_runs_with_the_timeouts(make_project: MakeProject) -> None:
    project = _project_with(make_project, RECORDING_MIGRATION)
    project.upgrade()
    assert _seen(project) == [
        ("after", "5s", "1h"),
        ("autocommit", "5s", "1h"),
        ("transaction", "5s", "1h"),
    ]


def test_timeouts_are_configurable(make_project: MakeProject) -> None:
    project = _project_with(make_project, RECORDING_MIGRATION)
    settings = {"lock_timeout": "250ms", "statement_timeout": "10min"}
    command.upgrade(project.config(settings=settings), "head")
    assert {row[1:] for row in _seen(project)} == {("250ms", "10min")}


def test_a_shared_connection_gets_its_session_settings_back(make_project: MakeProject) -> None:
    project = _project_with(make_project, RECORDING_MIGRATION)
    engine = create_engine(project.url)
    try:
        with engine.connect() as connection:
            shown = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
            before = tuple(connection.exec_driver_sql(shown).one())
            connection.commit()
            command.upgrade(project.config(connection=connection), "head")
            connection.commit()
            after = tuple(connection.exec_driver_sql(shown).one())
    finally:
        engine.dispose()
    assert after == before
    assert before != ("5s", "1h")
    assert ("autocommit", "5s", "1h") in _seen(project)


def test_a_migration_waiting_for_a_lock_fails(make_project: MakeProject) -> None:
    project = _project_with(make_project, LOCKED_MIGRATION)
    project.upgrade("0001")
    with psycopg.connect(project.url.replace("postgresql+psycopg", "postgresql")) as holder:
        holder.execute("LOCK TABLE books IN ACCESS SHARE MODE")  # a long report, say
        with pytest.raises(OperationalError) as raised:
            command.upgrade(project.config(settings={"lock_timeout": "100ms"}), "head")
    assert isinstance(raised.value.orig, psycopg.errors.LockNotAvailable)
    assert project.query("SELECT version_num FROM alembic_version") == ["0001"]


def test_offline_scripts_start_with_the_timeouts(make_project: MakeProject) -> None:
    project = make_project("fk_index")
    project.revision("create books")
    sql = project.offline_sql()
    timeouts = ["SET lock_timeout = '5s';", "SET statement_timeout = '1h';"]
    settings = [*timeouts, "SET TimeZone = 'UTC';"]
    assert sql.startswith("\n\n".join(["\\set ON_ERROR_STOP on", *settings, "BEGIN;"]))
