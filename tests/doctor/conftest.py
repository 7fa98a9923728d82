"""A PostgreSQL for the doctor's tests that can show every problem: pg_stat_statements
preloaded, WAL for replication slots, and small shared buffers so that cache misses are real.

When the tests run against a given server (``--pgkeel-url`` or ``DATABASE_URL``), they use it
as it is; the checks that need one of these settings then skip, saying which.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy.engine import make_url

from pgkeel.database import conninfo, find_binaries, throwaway_cluster
from pgkeel.doctor import Report, Thresholds, diagnose
from pgkeel.testing.databases import create_database, drop_database

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import URL

    from pgkeel.testing import PluginConfig

DOCTOR_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "wal_level": "logical",
    "max_wal_senders": "2",
    "shared_buffers": "16MB",
}
_NUMBERS = itertools.count(1)


@pytest.fixture(scope="session")
def doctor_server(
    pgkeel_config: PluginConfig, pgkeel_server_url: URL, pgkeel_database_prefix: str
) -> Iterator[URL]:
    """A server started with DOCTOR_SETTINGS, or the given server when the tests have one."""
    if pgkeel_config.url or os.environ.get("DATABASE_URL"):
        yield pgkeel_server_url
        return
    binaries = find_binaries([])
    if binaries is None:
        yield pgkeel_server_url
        return
    with throwaway_cluster(binaries, DOCTOR_SETTINGS) as cluster:
        yield cluster.url()


@pytest.fixture
def doctor_url(doctor_server: URL, pgkeel_database_prefix: str) -> Iterator[str]:
    """URL of a fresh, empty database for one test."""
    name = f"{pgkeel_database_prefix}_doctor_{next(_NUMBERS)}"
    url = create_database(doctor_server, name)
    yield url.render_as_string(hide_password=False)
    drop_database(doctor_server, name)


def execute(url: str, *statements: str) -> None:
    """Run setup statements in autocommit mode (VACUUM, CREATE INDEX CONCURRENTLY work).

    The session's statistics are flushed before it returns, so the doctor sees them at once.
    """
    with psycopg.connect(conninfo(make_url(url)), autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)  # type: ignore[arg-type]
        if connection.info.server_version >= 150000:
            connection.execute("SELECT pg_stat_force_next_flush()")


def as_role(url: str, role: str) -> str:
    """``url`` with ``role`` as the user (the throwaway cluster trusts local connections)."""
    return make_url(url).set(username=role).render_as_string(hide_password=False)


def found(url: str, **thresholds: float) -> Report:
    """The doctor's report on ``url`` with ``thresholds`` over the defaults."""
    return diagnose(url, thresholds=Thresholds(**thresholds))  # type: ignore[arg-type]


def server_setting(url: str, name: str) -> str:
    """The server's current value of setting ``name``."""
    with psycopg.connect(conninfo(make_url(url))) as connection:
        row = connection.execute("SELECT current_setting(%s)", [name]).fetchone()
    assert row is not None
    return str(row[0])
