"""A real schema: Apache Airflow's 57 models (Apache License 2.0) through pgkeel's migrations.

The package is installed from PyPI into an environment of its own (see bench/real_schema.py;
made once per machine and kept); none of its source is in this repository. The real Alembic
command line of that environment runs on a project whose configuration is only in pyproject.toml,
with ``[tool.pgkeel]`` settings for a schema that predates pgkeel: autogenerate, upgrade,
``alembic check`` (clean), downgrade to base (nothing left in the catalog), upgrade again.
Outside CI the test is skipped when the package cannot be installed (no registry); under
``CI=true`` it must run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic_project import CATALOG_LEFTOVERS
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from bench import real_schema
from pgkeel.testing.databases import create_database, drop_database

pytestmark = pytest.mark.slow

SEQUENCES = """
    SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'S'
"""


@pytest.fixture(scope="module")
def environment() -> Path:
    """The environment with Airflow and pgkeel, or a skip outside CI when it cannot be made."""
    try:
        return real_schema.ensure_environment()
    except real_schema.EnvironmentUnavailableError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{real_schema.REQUIREMENT} could not be installed from PyPI: {error}")


@pytest.fixture
def database(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[str]:
    name = f"{pgkeel_database_prefix}_real_schema"
    url = create_database(pgkeel_server_url, name)
    yield url.render_as_string(hide_password=False)
    drop_database(pgkeel_server_url, name)


def leftovers(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            queries = {**CATALOG_LEFTOVERS, "sequences": SEQUENCES}
            found = {
                kind: connection.execute(text(sql)).scalars().all() for kind, sql in queries.items()
            }
    finally:
        engine.dispose()
    return {kind: list(names) for kind, names in found.items() if names}


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_airflow_models_round_trip(environment: Path, database: str, tmp_path: Path) -> None:
    assert environment.is_dir()
    project = real_schema.write_project(tmp_path)

    def ok(*args: str) -> str:
        done = real_schema.alembic(project, database, *args)
        assert done.returncode == 0, f"alembic {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    ok("revision", "--autogenerate", "-m", "airflow")
    (migration,) = (project / "migrations" / "versions").glob("0001_*.py")
    source = migration.read_text()
    assert "airflow.utils.sqlalchemy.ExecutorConfigType(pickler=dill)" in source  # a custom type
    assert "import dill\n" in source
    assert "postgresql_where=sa.text(\"state='queued'\")" in source  # a partial index
    ok("upgrade", "head")
    tables = count(database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert tables >= 50 + 1  # and alembic_version
    assert count(database, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'") > 100
    assert "No new upgrade operations detected." in ok("check")
    ok("downgrade", "base")
    assert leftovers(database) == {}
    ok("upgrade", "head")
    assert "No new upgrade operations detected." in ok("check")
    # An autogenerate that finds nothing writes nothing.
    output = ok("revision", "--autogenerate", "-m", "nothing")
    assert "no migration was written" in output
    assert len(list((project / "migrations" / "versions").glob("*.py"))) == 1
