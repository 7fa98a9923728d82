"""``run_migrations`` in the places it is run: test harnesses, pyproject-only projects, the CLI."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError
from alembic_project import EXAMPLES, Project
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic_extensions.environment import MIGRATE_INFO_KEY, MigrationOptions, _include_object
from alembic_extensions.revisions import NOTHING_TO_WRITE
from pgkeel.testing.databases import create_database, drop_database
from tests.databases import conninfo, runtime_role

MakeProject = Callable[[str], Project]
ALEMBIC = Path(sys.executable).parent / "alembic"

BOOKS_MIGRATION = '''"""create books"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("books", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("books")
'''


def tables(project: Project) -> list[str]:
    return project.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")


@pytest.mark.parametrize("kind", ["connection", "engine", "async engine", "async engine in a loop"])
def test_the_connection_attribute_takes_a_connection_or_an_engine(
    make_project: MakeProject, kind: str
) -> None:
    project = make_project("fk_index")
    project.revision("create books")
    if kind == "connection":
        engine = create_engine(project.url, poolclass=NullPool)
        with engine.begin() as connection:
            command.upgrade(project.config(connection=connection), "head")
    elif kind == "engine":  # what pytest-alembic passes
        engine = create_engine(project.url, poolclass=NullPool)
        command.upgrade(project.config(connection=engine), "head")
    else:
        engine = create_async_engine(project.url, poolclass=NullPool)  # type: ignore[assignment]
        config = project.config(connection=engine)
        if kind == "async engine":
            command.upgrade(config, "head")
        else:

            async def from_a_running_loop() -> None:
                command.upgrade(config, "head")

            asyncio.run(from_a_running_loop())
    assert "books" in tables(project)
    assert project.query("SELECT version_num FROM alembic_version") == ["0001"]
    project.downgrade()
    assert "books" not in tables(project)


def test_anything_else_in_the_connection_attribute_is_an_error(make_project: MakeProject) -> None:
    project = make_project("fk_index")
    with pytest.raises(CommandError, match=r"holds str 'postgresql://x'.*Connection, Engine"):
        command.upgrade(project.config(connection="postgresql://x"), "head")


def pyproject_only(tmp_path: Path) -> Path:
    """A project whose Alembic configuration is only in pyproject.toml, as the template's."""
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    (tmp_path / "migrations" / "script.py.mako").write_text(
        (EXAMPLES / "script.py.mako").read_text()
    )
    (tmp_path / "migrations" / "env.py").write_text(
        "from alembic import context\n"
        "from sqlalchemy import MetaData\n"
        "from alembic_extensions import run_migrations\n"
        "run_migrations(context, MetaData())\n"
    )
    (tmp_path / "migrations" / "versions" / "0001_create_books.py").write_text(BOOKS_MIGRATION)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "svc"\n\n[tool.alembic]\nscript_location = "%(here)s/migrations"\n'
    )
    return tmp_path


def alembic_cli(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    return subprocess.run(
        [str(ALEMBIC), *args],
        cwd=directory,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def test_pyproject_only_and_no_url_shows_pgkeels_message(tmp_path: Path) -> None:
    project = pyproject_only(tmp_path)
    for args in (["upgrade", "head"], ["current"], ["check"]):
        result = alembic_cli(project, *args)
        assert result.returncode != 0, args
        assert "No config file 'alembic.ini' found" not in result.stdout + result.stderr
        assert result.stdout.startswith(
            "FAILED: No database to migrate. Tried: the url argument of run_migrations(), the "
            "DATABASE_URL environment variable, sqlalchemy.url in alembic.ini (there is none: "
            "the Alembic configuration is in pyproject.toml). Fix: export DATABASE_URL="
        ), (args, result.stdout)


def test_offline_sql_needs_no_url(tmp_path: Path) -> None:
    result = alembic_cli(pyproject_only(tmp_path), "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE books (" in result.stdout
    assert "SET lock_timeout = '5s';" in result.stdout
    assert "INFO  [alembic.runtime.migration] Running upgrade  -> 0001, create books" in (
        result.stderr
    )


def test_migrations_log_each_step_when_no_logging_is_configured(
    tmp_path: Path, make_project: MakeProject
) -> None:
    database = make_project("fk_index").url
    project = pyproject_only(tmp_path)
    up = alembic_cli(project, "upgrade", "head", DATABASE_URL=database)
    assert up.returncode == 0, up.stderr
    assert "INFO  [alembic.runtime.migration] Running upgrade  -> 0001, create books" in up.stderr
    down = alembic_cli(project, "downgrade", "base", DATABASE_URL=database)
    assert "INFO  [alembic.runtime.migration] Running downgrade 0001 -> , create books" in (
        down.stderr
    )


def test_alembic_ini_logging_sections_are_used(tmp_path: Path, make_project: MakeProject) -> None:
    database = make_project("fk_index").url
    project = pyproject_only(tmp_path)
    (project / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\n\n"
        "[loggers]\nkeys = root,alembic\n[handlers]\nkeys = console\n[formatters]\nkeys = plain\n"
        "[logger_root]\nlevel = WARNING\nhandlers = console\n"
        "[logger_alembic]\nlevel = INFO\nhandlers =\nqualname = alembic\n"
        "[handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nformatter = plain\n"
        "[formatter_plain]\nformat = from-ini %(message)s\n"
    )
    up = alembic_cli(project, "upgrade", "head", DATABASE_URL=database)
    assert up.returncode == 0, up.stderr
    assert "from-ini Running upgrade  -> 0001, create books" in up.stderr
    assert "INFO  [" not in up.stderr


def test_an_autogenerate_that_finds_nothing_writes_no_file(make_project: MakeProject) -> None:
    project = make_project("fk_index")
    project.revision("create books")
    project.upgrade()
    config = project.config()
    assert command.revision(config, message="nothing", autogenerate=True) in (None, [])
    assert len(project.versions()) == 1
    assert isinstance(config.stdout, io.StringIO)
    assert NOTHING_TO_WRITE in config.stdout.getvalue()
    project.check()  # alembic check still sees the (empty) comparison
    written = command.revision(project.config(), message="data fix")  # by hand: kept
    assert written is not None
    assert len(project.versions()) == 2


def test_a_users_render_item_runs_before_pgkeels(make_project: MakeProject) -> None:
    project = make_project("custom_types")
    seen: list[str] = []

    def render_item(type_: str, obj: Any, _context: Any) -> str | bool:
        seen.append(type_)
        if type_ == "type" and type(obj).__name__ == "Money":
            return "sa.Numeric(12, 2)"
        return False

    command.revision(
        project.config(settings={"render_item": render_item}),
        message="create payments",
        autogenerate=True,
    )
    source = project.versions()[0].read_text()
    assert "sa.Column('amount', sa.Numeric(12, 2)" in source  # the user's wins
    assert "import pgkeel_example_custom_types_models" not in source
    assert "sa.Column('source_ip', postgresql.INET()" in source  # the others fall through
    assert "type" in seen
    project.upgrade()


def marked_metadata(where: str) -> sa.MetaData:
    """A table with one column and one index, ``where`` ("table", "column", "index", "") marked."""
    metadata = sa.MetaData()
    left_alone = {"info": {MIGRATE_INFO_KEY: False}}
    table = sa.Table(
        "books",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, **(left_alone if where == "column" else {})),
        **(left_alone if where == "table" else {}),
    )
    sa.Index("ix_books_title", table.c.title, **(left_alone if where == "index" else {}))
    return metadata


def test_with_nothing_marked_alembic_gets_the_users_filter_or_none() -> None:
    def users(*_: Any) -> bool:
        return True

    assert _include_object(MigrationOptions(), marked_metadata("")) is None
    assert _include_object(MigrationOptions(include_object=users), marked_metadata("")) is users


@pytest.mark.parametrize("where", ["table", "column", "index"])
def test_a_marked_item_is_left_alone_on_both_sides_and_the_users_filter_sees_the_rest(
    where: str,
) -> None:
    metadata = marked_metadata(where)
    table = metadata.tables["books"]
    marked = {"table": table, "column": table.c.title, "index": next(iter(table.indexes))}[where]
    seen: list[str | None] = []

    def users(_obj: Any, name: str | None, *_: Any) -> bool:
        seen.append(name)
        return name != "id"

    include = _include_object(MigrationOptions(include_object=users), [metadata])
    assert include is not None
    reflected = sa.Table("books", sa.MetaData(), sa.Column("title", sa.Text))
    assert include(marked, "x", where, False, None) is False  # the model's
    assert include(reflected, "x", where, True, marked) is False  # the database's
    assert seen == []
    assert include(table.c.id, "id", "column", False, None) is False
    assert include(reflected.c.title, "other", "column", True, None) is True
    assert seen == ["id", "other"]


def test_a_server_that_refuses_the_role_is_not_called_down(
    tmp_path: Path, pgkeel_server_url: URL
) -> None:
    wrong = pgkeel_server_url.set(username="no_such_role", password=None)
    url = wrong.render_as_string(hide_password=False)
    result = alembic_cli(pyproject_only(tmp_path), "upgrade", "head", DATABASE_URL=url)
    assert result.returncode != 0
    assert result.stdout.startswith("FAILED: The database server at "), result.stdout
    assert 'role "no_such_role" does not exist' in result.stdout
    assert "Fix: check the role, its password and the database name" in result.stdout
    assert "does not answer" not in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_migrating_as_the_runtime_role_says_to_use_the_owner(
    tmp_path: Path, pgkeel_server_url: URL, pgkeel_database_prefix: str
) -> None:
    """The runtime role may not create tables: one paragraph, not a traceback."""
    name = f"{pgkeel_database_prefix}_runtime_migrates"
    database = create_database(pgkeel_server_url, name)
    with psycopg.connect(conninfo(database), autocommit=True) as owner:
        owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        with runtime_role(pgkeel_server_url, database, f"{name}_app") as runtime:
            url = runtime.render_as_string(hide_password=False)
            result = alembic_cli(pyproject_only(tmp_path), "upgrade", "head", DATABASE_URL=url)
    finally:
        drop_database(pgkeel_server_url, name)
    assert result.returncode != 0
    assert result.stdout.startswith(f"FAILED: The role '{name}_app' may not change the schema")
    assert "permission denied for schema public" in result.stdout
    assert "MIGRATION_DATABASE_URL" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
