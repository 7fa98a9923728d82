"""pytest plugin: a real PostgreSQL for every test session, a fresh database for every module.

Fixtures (all overridable in a ``conftest.py``):

- ``postgres_url`` (session): URL of an empty database for this session, one per xdist worker.
- ``pgkeel_schema`` (session): what builds the schema once, from the ``pgkeel_schema`` option.
- ``db_url`` (module): a fresh database copied from a template that holds the schema.
- ``db_engine`` (module): an Engine on ``db_url``.
- ``db_session`` (function): a Session inside a transaction that is rolled back after the test;
  the code under test may call ``commit()``, which only releases a SAVEPOINT.
- ``pgbouncer_factory`` (session): starts PgBouncers in transaction-pooling mode in front of a
  test database (``pgbouncer_factory(db_url, users=["app"], pool_size=1)``); skips the test when
  the ``pgbouncer`` program is not installed.
- ``pgbouncer_url`` (session): ``postgres_url``'s database through such a PgBouncer.

The server is the first of: ``--pgkeel-url``/``pgkeel_url``, ``DATABASE_URL``, a throwaway
cluster from local or pgserver binaries, a testcontainers PostgreSQL (always the latter with
``pgkeel_source = testcontainers``). Under pytest-xdist the
controller starts one server and each worker gets its own databases on it.
"""

from __future__ import annotations

import itertools
import os
from contextlib import ExitStack, nullcontext, suppress
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pgkeel.database import Server, conninfo, parse_database_url, provide_server
from pgkeel.database.process import TMPDIR_ENV
from pgkeel.errors import DatabaseError, PgkeelError
from pgkeel.testing.config import PluginConfig, SchemaBuilder, add_options
from pgkeel.testing.databases import (
    create_database,
    drop_database,
    end_other_sessions,
    session_token,
)
from pgkeel.testing.pgbouncer import PgBouncer, PgBouncers, find_pgbouncer, not_found_message

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy.engine import URL, Connection, Engine

__all__ = ["PgBouncer", "PluginConfig", "SchemaBuilder"]

T = TypeVar("T")
P = ParamSpec("P")
_WORKER_URL = "pgkeel_server_url"
_WORKER_TOKEN = "pgkeel_session_token"  # noqa: S105  # a key name, not a secret


class _ServerHolder:
    """The server of this pytest process, started on first use and stopped at the end."""

    def __init__(self, plugin_config: PluginConfig) -> None:
        self.plugin_config = plugin_config
        self.token = session_token()
        self._stack = ExitStack()
        self._server: Server | None = None

    def server(self) -> Server:
        """The server, started on first use (binaries of ``pgkeel_postgres_version`` first)."""
        if self._server is None:
            config = self.plugin_config
            env = {"DATABASE_URL": config.url} if config.url else None
            provider = provide_server(
                env,
                image=config.image,
                container_only=config.container_only(),
                prefer_major=config.wanted_major(),
                settings=config.settings(),
            )
            try:
                self._server = self._stack.enter_context(provider)
            except DatabaseError as exc:
                raise _with_tmpdir_fix(exc) from None
        return self._server

    def url(self) -> URL:
        return self.server().url

    def header(self) -> str:
        """``pgkeel: PostgreSQL 17.2 (from ...)``, and whether it is the version wanted."""
        try:
            server = self.server()
            with psycopg.connect(conninfo(server.url)) as connection:
                row = connection.execute("show server_version").fetchone()
        except (PgkeelError, psycopg.Error) as exc:
            first = (str(exc).strip().splitlines() or ["unknown"])[0]
            return f"pgkeel: no PostgreSQL server ({first}); the database tests will say why"
        version = str(row[0] if row else "0").split()[0]
        line = f"pgkeel: PostgreSQL {version} ({server.origin})"
        wanted = self.plugin_config.wanted_major()
        if wanted is None or version.split(".")[0] == str(wanted):
            return line
        problem = (
            f"not PostgreSQL {wanted}, which pgkeel_postgres_version names. Fix: install "
            f"PostgreSQL {wanted} (pgkeel's docs/testing.md says how), or give the tests a server "
            "of that version (--pgkeel-url or the pgkeel_url setting, else DATABASE_URL; a "
            "service made from pgkeel's template reads TEST_DATABASE_URL), or set "
            "pgkeel_postgres_version to the version you have"
        )
        if self.plugin_config.version_mismatch == "error":
            raise VersionMismatchError(f"{line}: {problem}.")
        return f"{line}; WARNING: {problem} (pgkeel_version_mismatch = 'error' stops the run)"

    def close(self) -> None:
        self._stack.close()


_DIR_FIX = "(`pgkeel db start --dir`)"


def _with_tmpdir_fix(error: DatabaseError) -> DatabaseError:
    """``error``, whose fix names ``PGKEEL_TMPDIR`` when that variable chose the directory.

    A throwaway cluster lives under ``PGKEEL_TMPDIR`` when it is set; a server user who cannot
    reach it is fixed there, not with the ``--dir`` of ``pgkeel db start``.
    """
    message = str(error)
    if not os.environ.get(TMPDIR_ENV) or _DIR_FIX not in message:
        return error
    fix = (
        f"(set {TMPDIR_ENV} to a directory every user can enter, or unset it; it is "
        f"{os.environ[TMPDIR_ENV]!r})"
    )
    return DatabaseError(message.replace(_DIR_FIX, fix))


class VersionMismatchError(PgkeelError):
    """The test server is not the PostgreSQL version the project targets."""


_HOLDER = pytest.StashKey[_ServerHolder]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--pgkeel-*`` options and ``pgkeel_*`` ini keys."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Prepare (but do not start) this process's server unless it is an xdist worker."""
    if not hasattr(config, "workerinput"):
        config.stash[_HOLDER] = _ServerHolder(PluginConfig.from_pytest(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the server this process started, if any."""
    holder = config.stash.get(_HOLDER, None)
    if holder is not None:
        holder.close()


def pytest_report_header(config: pytest.Config) -> str | None:
    """One line: the test server's version and where it comes from (it starts here)."""
    holder = config.stash.get(_HOLDER, None)
    if holder is None:
        return None
    try:
        return holder.header()
    except VersionMismatchError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """Under xdist, start the server in the controller and hand its URL to each worker."""
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    holder = config.stash[_HOLDER]
    try:
        url = holder.url()
    except PgkeelError as exc:
        raise pytest.UsageError(str(exc)) from None
    node.workerinput[_WORKER_URL] = url.render_as_string(hide_password=False)  # type: ignore[attr-defined]
    node.workerinput[_WORKER_TOKEN] = holder.token  # type: ignore[attr-defined]


def _or_fail(produce: Callable[[], T]) -> T:
    """Call ``produce``; a pgkeel error fails the test with its message alone, no traceback."""
    try:
        return produce()
    except PgkeelError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


def _failing_cleanly(produce: Callable[P, T]) -> Callable[P, T]:
    """``produce``, but a pgkeel error fails the test with its message alone."""

    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return _or_fail(lambda: produce(*args, **kwargs))

    return call


def _worker_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


@pytest.fixture(scope="session")
def pgkeel_config(pytestconfig: pytest.Config) -> PluginConfig:
    """The plugin's options as one frozen value."""
    return PluginConfig.from_pytest(pytestconfig)


@pytest.fixture(scope="session")
def pgkeel_server_url(pytestconfig: pytest.Config) -> URL:
    """URL of the server's maintenance database; the server is started on first use."""
    workerinput = getattr(pytestconfig, "workerinput", None)
    if workerinput is not None:
        return parse_database_url(workerinput[_WORKER_URL])
    return _or_fail(pytestconfig.stash[_HOLDER].url)


@pytest.fixture(scope="session")
def pgkeel_database_prefix(pytestconfig: pytest.Config) -> str:
    """Prefix of every database this session creates: unique per session and per worker."""
    workerinput = getattr(pytestconfig, "workerinput", None)
    token = workerinput[_WORKER_TOKEN] if workerinput else pytestconfig.stash[_HOLDER].token
    return f"pgkeel_{token}_{_worker_id(pytestconfig)}"


@pytest.fixture(scope="session")
def postgres_url(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[str]:
    """URL (``postgresql+psycopg://``) of an empty database for this session and worker."""
    name = f"{pgkeel_database_prefix}_session"
    url = create_database(pgkeel_server_url, name)
    yield url.render_as_string(hide_password=False)
    drop_database(pgkeel_server_url, name)


@pytest.fixture(scope="session")
def pgkeel_schema(pgkeel_config: PluginConfig) -> SchemaBuilder | None:
    """What builds the schema in the template database; override it in a conftest.py."""
    return _or_fail(pgkeel_config.schema_builder)


@pytest.fixture(scope="session")
def pgkeel_template_database(
    pgkeel_server_url: URL, pgkeel_database_prefix: str, pgkeel_schema: SchemaBuilder | None
) -> Iterator[str]:
    """Name of a database holding the schema, built once, copied for every test module."""
    name = f"{pgkeel_database_prefix}_template"
    url = create_database(pgkeel_server_url, name)
    if pgkeel_schema is not None:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                pgkeel_schema(connection)
        finally:
            engine.dispose()
        end_other_sessions(pgkeel_server_url, name)  # connections the builder left open
    yield name
    drop_database(pgkeel_server_url, name)


_MODULE_NUMBERS = itertools.count(1)


def _template_in_use(template: str, error: psycopg.Error) -> str:
    first = (str(error).strip().splitlines() or [""])[0]
    return (
        f"db_url: the template database {template!r} cannot be copied: {first}. A connection "
        "to it is still open (the schema builder's sessions are ended after the build, so one "
        "was opened since, or could not be ended). Fix: close every connection to the template "
        "database (dispose the engine your pgkeel_schema builder or Alembic env.py creates; "
        "tests connect to db_url, never to the template)."
    )


@pytest.fixture(scope="module")
def db_url(
    pgkeel_server_url: URL, pgkeel_database_prefix: str, pgkeel_template_database: str
) -> Iterator[str]:
    """URL of a fresh database for this test module, copied from the template database."""
    name = f"{pgkeel_database_prefix}_m{next(_MODULE_NUMBERS)}"
    try:
        url = create_database(pgkeel_server_url, name, template=pgkeel_template_database)
    except psycopg.errors.ObjectInUse as exc:
        pytest.fail(_template_in_use(pgkeel_template_database, exc), pytrace=False)
    yield url.render_as_string(hide_password=False)
    drop_database(pgkeel_server_url, name)


@pytest.fixture(scope="module")
def db_engine(db_url: str) -> Iterator[Engine]:
    """An Engine on this module's database, disposed after the module."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


_ENDED_BY_THE_TEST = (
    "db_session: the test ended the transaction that holds its work (a COMMIT in SQL text, or "
    "the driver connection's own commit()), so what it wrote stays in this module's database "
    "for the tests after it. Fix: call session.commit() (a savepoint, rolled back after the "
    "test); a test that must commit for real uses db_engine and removes its rows itself."
)


def _ended_by_the_test(connection: Connection) -> bool:
    """Whether the driver left the fixture's transaction (committed behind the Session)."""
    driver = connection.connection.driver_connection
    status = getattr(getattr(driver, "info", None), "transaction_status", None)
    return status == psycopg.pq.TransactionStatus.IDLE


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    """A Session whose work is rolled back after the test, even work it committed.

    A test that ends the fixture's transaction itself (``COMMIT`` as SQL text) fails at teardown
    with the reason, rather than leave its rows to the module's next tests in silence.
    """
    with db_engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            ended = _ended_by_the_test(connection)
            with suppress(Exception) if ended else nullcontext():  # its savepoint is gone too
                session.close()
                transaction.rollback()
            if ended:
                pytest.fail(_ENDED_BY_THE_TEST, pytrace=False)


@pytest.fixture(scope="session")
def pgbouncer_factory() -> Iterator[Callable[..., PgBouncer]]:
    """Start PgBouncers (transaction pooling) in front of test databases; stopped at the end.

    Call it with a database URL, and optionally ``users`` (extra roles that may connect),
    ``pool_size`` (default 2) and ``pool_mode``; it returns a running ``PgBouncer`` whose ``url``
    points at the same database through the pooler. Skips when ``pgbouncer`` is not installed.
    """
    if _or_fail(find_pgbouncer) is None:
        pytest.skip(not_found_message())
    bouncers = PgBouncers()
    yield _failing_cleanly(bouncers)
    bouncers.stop_all()


@pytest.fixture(scope="session")
def pgbouncer_url(pgbouncer_factory: Callable[..., PgBouncer], postgres_url: str) -> str:
    """URL of ``postgres_url``'s database through a PgBouncer in transaction-pooling mode."""
    return pgbouncer_factory(postgres_url).url.render_as_string(hide_password=False)
