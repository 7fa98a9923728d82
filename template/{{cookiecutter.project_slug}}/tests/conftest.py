"""The tests run on a real PostgreSQL, from pgkeel's pytest plugin (``pgkeel.testing``).

The server is ``TEST_DATABASE_URL`` when it is set (its role needs ``CREATEDB`` and
``CREATEROLE``: the tests create and drop their own databases and roles). ``DATABASE_URL`` and
``MIGRATION_DATABASE_URL`` are the service's own roles (after ``make db``, the development
database's runtime role and owner, which may not create databases): the tests never use them.
Otherwise, when a Docker engine answers, a container of the PostgreSQL version the service
targets (``pgkeel_image`` in pyproject.toml); otherwise pgkeel's default: a throwaway cluster
from the PostgreSQL binaries on this machine or from the ``pgserver`` wheel. Each test module
gets a fresh copy of a database built once from the models; the migration tests get empty
databases of their own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.config import Config
from pgkeel import create_sessionmaker
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from app.core.config import DATABASE_URL, MIGRATION_DATABASE_URL

ROOT = Path(__file__).resolve().parents[1]
DOCKER_SOCKET = Path("/var/run/docker.sock")
TEST_DATABASE_URL = "TEST_DATABASE_URL"


def _docker_answers() -> bool:
    """Whether a Docker engine answers a ping (the client is asked only if an endpoint exists)."""
    if not (os.environ.get("DOCKER_HOST") or DOCKER_SOCKET.exists()):
        return False
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
    except Exception:  # any failure to reach Docker means "no engine answers"
        return False
    try:
        return bool(client.ping())
    except Exception:  # as above
        return False
    finally:
        client.close()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """The tests' server: TEST_DATABASE_URL, else the targeted PostgreSQL in Docker, else pgkeel's.

    Never the service's own DATABASE_URL (pgkeel.testing would take it as its server).
    """
    for name in (DATABASE_URL, MIGRATION_DATABASE_URL):
        os.environ.pop(name, None)
    if hasattr(config, "workerinput"):  # xdist workers use the controller's server
        return
    given = config.getoption("pgkeel_url") or config.getini("pgkeel_url")
    if not given and os.environ.get(TEST_DATABASE_URL):
        config.option.pgkeel_url = os.environ[TEST_DATABASE_URL]
    elif not given and config.getoption("pgkeel_source") is None and _docker_answers():
        config.option.pgkeel_source = "testcontainers"  # the image is pgkeel_image


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    """A session of the service's own kind (pgkeel's hooks), rolled back after the test."""
    with db_engine.connect() as connection:
        transaction = connection.begin()
        factory = create_sessionmaker(db_engine)
        session = factory(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


def _admin_connect(server: URL) -> psycopg.Connection[tuple[Any, ...]]:
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True)


@pytest.fixture
def empty_database_url(pgkeel_server_url: URL) -> Iterator[str]:
    """URL of a new, empty database on the test server, dropped after the test."""
    name = f"migrations_{secrets.token_hex(6)}"
    with _admin_connect(pgkeel_server_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pgkeel_server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connect(pgkeel_server_url) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def alembic_config(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The service's Alembic configuration, migrating the empty database of this test."""
    monkeypatch.setenv(MIGRATION_DATABASE_URL, empty_database_url)
    return Config(toml_file=str(ROOT / "pyproject.toml"))
