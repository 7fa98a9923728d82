"""The plugin's fixtures on real PostgreSQL: a working server, isolation, template copies."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from pgkeel.database import conninfo
from pgkeel.errors import PgkeelError
from pgkeel.testing import PluginConfig

notes = Table("fixture_notes", MetaData(), Column("id", Integer, primary_key=True))


def test_postgres_url_gives_a_working_postgresql(postgres_url: str) -> None:
    with psycopg.connect(conninfo(make_url(postgres_url))) as connection:
        version = connection.execute("select version()").fetchone()
    assert version is not None
    assert str(version[0]).startswith("PostgreSQL ")


def test_server_never_runs_as_root(postgres_url: str) -> None:
    with psycopg.connect(conninfo(make_url(postgres_url))) as connection:
        row = connection.execute("show data_directory").fetchone()
    assert row is not None
    data_directory = Path(str(row[0]))
    if data_directory.exists():  # a throwaway cluster on this machine
        assert data_directory.stat().st_uid != 0
        assert os.geteuid() != 0 or data_directory.stat().st_uid != os.geteuid()


def test_each_module_gets_its_own_database(db_engine: Engine, postgres_url: str) -> None:
    assert db_engine.url.database != make_url(postgres_url).database
    assert db_engine.url.database is not None
    assert db_engine.url.database.endswith(tuple(f"_m{n}" for n in range(1, 1000)))


def test_a_committed_row_exists_within_its_test(db_session: Session) -> None:
    notes.create(db_session.connection())
    db_session.execute(insert(notes).values(id=1))
    db_session.commit()
    assert db_session.scalars(select(notes.c.id)).all() == [1]


def test_the_next_test_does_not_see_it(db_engine: Engine, db_session: Session) -> None:
    assert not inspect(db_engine).has_table("fixture_notes")
    assert (
        db_session.execute(
            text("select count(*) from pg_class where relname = 'fixture_notes'")
        ).scalar()
        == 0
    )


def test_rollback_inside_a_test_keeps_the_outer_transaction(db_session: Session) -> None:
    notes.create(db_session.connection())
    db_session.commit()
    db_session.execute(insert(notes).values(id=2))
    db_session.rollback()
    assert db_session.scalars(select(notes.c.id)).all() == []


def test_a_commit_behind_the_session_fails_at_teardown_with_the_fix(
    pytester: pytest.Pytester,
) -> None:
    """A ``COMMIT`` as SQL text ends the fixture's transaction: said, never left in silence."""
    pytester.makepyfile(
        test_commits="""
        from sqlalchemy import text
        def test_commits_in_sql(db_session):
            db_session.execute(text("create table kept (id int)"))
            db_session.execute(text("COMMIT"))
        def test_commits_properly(db_session):
            db_session.execute(text("create table rolled (id int)"))
            db_session.commit()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*db_session: the test ended the transaction*Fix: call*"])
    assert "does not exist" not in result.stdout.str()  # no raw error about the savepoint


@pytest.mark.parametrize("attempt", [1, 2])
def test_the_schema_builder_runs_once_and_modules_get_copies(
    pytester: pytest.Pytester, attempt: int
) -> None:
    pytester.makepyfile(
        schema_mod="""
        from sqlalchemy import Column, Integer, MetaData, Table
        metadata = MetaData()
        Table("widgets", metadata, Column("id", Integer, primary_key=True))
        """,
        test_one="""
        from sqlalchemy import inspect, text
        def test_has_table(db_engine):
            assert inspect(db_engine).has_table("widgets")
            with db_engine.begin() as c:
                c.execute(text("insert into widgets values (1)"))
        """,
        test_two="""
        from sqlalchemy import text
        def test_fresh_copy(db_engine):
            with db_engine.connect() as c:
                assert c.execute(text("select count(*) from widgets")).scalar() == 0
        """,
    )
    pytester.makeini("[pytest]\npgkeel_schema = schema_mod:metadata\n")
    args = ["-p", "no:cacheprovider"] + (["-n", "2"] if attempt == 2 else [])
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2)


def test_a_throwaway_cluster_starts_with_the_server_settings_asked_for(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_preloaded="""
        import psycopg
        from sqlalchemy.engine import make_url
        from pgkeel.database import conninfo

        def test_preloaded(postgres_url):
            with psycopg.connect(conninfo(make_url(postgres_url))) as connection:
                row = connection.execute("SHOW shared_preload_libraries").fetchone()
                assert row == ("pg_stat_statements",)
                connection.execute("CREATE EXTENSION pg_stat_statements")
                connection.execute("SELECT count(*) FROM pg_stat_statements")
        """
    )
    pytester.makeini(
        "[pytest]\npgkeel_server_settings = shared_preload_libraries=pg_stat_statements\n"
    )
    env_url = os.environ.pop("DATABASE_URL", None)
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    finally:
        if env_url is not None:
            os.environ["DATABASE_URL"] = env_url
    result.assert_outcomes(passed=1)


def test_a_server_setting_without_a_value_is_refused() -> None:
    config = PluginConfig(url="", schema="", image="", server_settings="wal_level")
    with pytest.raises(PgkeelError, match="'wal_level', which is not NAME=VALUE"):
        config.settings()
