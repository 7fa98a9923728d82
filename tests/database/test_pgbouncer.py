"""PgBouncer in transaction-pooling mode, for real, in front of the test server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pgkeel.database import conninfo
from pgkeel.testing import pgbouncer as pgbouncer_module
from pgkeel.testing.pgbouncer import (
    CONNECT_ARGS,
    PGBOUNCER_ENV,
    PgBouncer,
    PgBouncerNotFoundError,
    pgbouncer,
)

from .test_cleanup import postgres_processes

Factory = Callable[..., PgBouncer]


def connect(bouncer: PgBouncer, database: str | None = None) -> psycopg.Connection[tuple]:
    url = bouncer.url_for(database) if database else bouncer.url
    return psycopg.connect(conninfo(url), prepare_threshold=None)


def one(connection: psycopg.Connection[tuple], query: str) -> object:
    row = connection.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_pgbouncer_url_reaches_the_session_database(pgbouncer_url: str, postgres_url: str) -> None:
    assert make_url(pgbouncer_url).port != make_url(postgres_url).port
    with psycopg.connect(conninfo(make_url(pgbouncer_url)), prepare_threshold=None) as connection:
        assert one(connection, "select current_database()") == make_url(postgres_url).database


def test_it_pools_per_transaction(pgbouncer_factory: Factory, postgres_url: str) -> None:
    bouncer = pgbouncer_factory(postgres_url, pool_size=1)
    with connect(bouncer) as first, connect(bouncer) as second:
        first_backend = one(first, "select pg_backend_pid()")
        first.commit()
        # In session mode the second client would wait for the first to disconnect.
        assert one(second, "select pg_backend_pid()") == first_backend
        second.commit()
    with connect(bouncer, "pgbouncer") as admin:
        admin.autocommit = True
        config = {row[0]: row[1] for row in admin.execute("show config").fetchall()}
    assert (config["pool_mode"], config["default_pool_size"]) == ("transaction", "1")


def test_sqlalchemy_without_prepared_statements(pgbouncer_factory: Factory, db_url: str) -> None:
    bouncer = pgbouncer_factory(db_url, pool_size=1)
    engine = create_engine(bouncer.url, connect_args=CONNECT_ARGS)
    try:
        with engine.begin() as connection:
            connection.execute(text("create table counters (n int)"))
        for n in range(20):  # psycopg would prepare from the 5th run on; PgBouncer forbids that
            with engine.begin() as connection:
                connection.execute(text("insert into counters values (:n)"), {"n": n})
        with engine.connect() as connection:
            assert connection.execute(text("select count(*) from counters")).scalar() == 20
    finally:
        engine.dispose()


def test_a_transaction_local_setting_does_not_reach_the_next_client(
    pgbouncer_factory: Factory, postgres_url: str
) -> None:
    bouncer = pgbouncer_factory(postgres_url, pool_size=1)
    with connect(bouncer) as writer, connect(bouncer) as reader:
        writer.execute("select set_config('pgkeel.tenant_id', 'acme', true)")
        assert one(writer, "select current_setting('pgkeel.tenant_id')") == "acme"
        backend = one(writer, "select pg_backend_pid()")
        writer.commit()
        assert one(reader, "select pg_backend_pid()") == backend
        assert one(reader, "select current_setting('pgkeel.tenant_id', true)") in {"", None}


def test_a_session_setting_does_reach_the_next_client(
    pgbouncer_factory: Factory, postgres_url: str
) -> None:
    """Why pgkeel sets per-transaction settings only: a session setting leaks through the pool."""
    bouncer = pgbouncer_factory(postgres_url, pool_size=1)
    with connect(bouncer) as writer, connect(bouncer) as reader:
        writer.execute("select set_config('pgkeel.leaky', 'acme', false)")
        writer.commit()
        assert one(reader, "select current_setting('pgkeel.leaky', true)") == "acme"
        reader.execute("reset pgkeel.leaky")
        reader.commit()


def gone(bouncer: PgBouncer) -> bool:
    return not bouncer.directory.exists() and not postgres_processes(bouncer.directory)


def test_nothing_is_left_after_the_block(postgres_url: str) -> None:
    with pgbouncer(postgres_url) as bouncer:
        assert postgres_processes(bouncer.directory) == [bouncer.pid]
        assert bouncer.directory.is_dir()
    assert gone(bouncer)


def test_nothing_is_left_after_an_exception(postgres_url: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), pgbouncer(postgres_url) as bouncer:
        raise RuntimeError("boom")
    assert gone(bouncer)


def test_it_runs_as_the_server_user(postgres_url: str) -> None:
    with pgbouncer(postgres_url) as bouncer:
        status = Path(f"/proc/{bouncer.pid}/status").read_text()
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid == bouncer.user.uid
    assert uid != 0


def test_missing_program_is_a_clear_error(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(PGBOUNCER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pgbouncer_module, "FALLBACK_PATHS", ())
    with pytest.raises(PgBouncerNotFoundError) as error, pgbouncer(postgres_url):
        pass
    assert "pgbouncer is not installed" in str(error.value)
    assert "apt-get install pgbouncer" in str(error.value)


def test_fixture_skips_when_the_program_is_missing(tmp_path: Path) -> None:
    (tmp_path / "test_bounced.py").write_text("def test_it(pgbouncer_url):\n    pass\n")
    (tmp_path / "conftest.py").write_text(  # not installed: neither on PATH nor in /usr/sbin
        "import pgkeel.testing.pgbouncer\n\npgkeel.testing.pgbouncer.FALLBACK_PATHS = ()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != PGBOUNCER_ENV}
    env["PATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "pgbouncer is not installed" in result.stdout
