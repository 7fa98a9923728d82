"""The tenant reaches PostgreSQL with ``BEGIN``, in the round trip psycopg makes for it anyway.

A protocol-reading proxy (``tests/isolation/wire.py``) sits between the client and PostgreSQL
(or PgBouncer in transaction mode) and records each round trip: the messages the client sent
before it waited, and their SQL. A hooked transaction makes as many round trips as the same
transaction without pgkeel; its first one carries ``BEGIN`` and ``set_config``, and nothing of
the statement; a failing ``set_config`` means the statement is never sent (a sequence proves it:
``nextval`` is not transactional). Every kind of first statement (a server-side cursor,
``executemany``, ``insertmanyvalues`` with ``RETURNING``, a savepoint, a two-phase transaction,
an async stream) runs with the tenant in force.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, create_engine, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from pgkeel import create_sessionmaker, tenant_context
from pgkeel.session import install_engine_hooks
from pgkeel.testing.databases import create_database, drop_database
from pgkeel.testing.pgbouncer import CONNECT_ARGS, PgBouncer
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Tag
from tests.isolation.wire import Trip, Wire, wire_proxy


def begin_with(tenant: object) -> list[str]:
    """The one simple query that opens a hooked transaction for ``tenant`` (None: no tenant)."""
    value = "" if tenant is None else str(tenant)
    return [f"BEGIN; SELECT set_config('app.tenant_id', '{value}', true)"]


SETTING = text("SELECT current_setting('app.tenant_id', true)")
TENANTS_SEEN = text("SELECT DISTINCT tenant_id FROM customers")
CLEAR_TEXT = {"sslmode": "disable", "gssencmode": "disable"}


@pytest.fixture(params=["direct", "PgBouncer"])
def server(request: pytest.FixtureRequest, isolation_db: URL, runtime_role: str) -> URL:
    """Where the runtime role's connections go: PostgreSQL, or PgBouncer in transaction mode."""
    if request.param == "direct":
        return isolation_db.set(username=runtime_role, password=None)
    bouncer: PgBouncer = request.getfixturevalue("single_connection_bouncer")
    return bouncer.url_for(isolation_db.database or "", user=runtime_role)


@pytest.fixture
def wire(server: URL, seeded: Seed) -> Iterator[tuple[Wire, URL]]:
    """The proxy in front of ``server``, and the URL that connects through it."""
    assert server.host is not None
    assert server.port is not None
    with wire_proxy(server.host, server.port) as proxy:
        url = server.set(host="127.0.0.1", port=proxy.port, query={**server.query, **CLEAR_TEXT})
        yield proxy, url


@pytest.fixture
def engines(wire: tuple[Wire, URL]) -> Iterator[tuple[Engine, Engine]]:
    """(without pgkeel, with pgkeel's engine hooks) through the proxy, warmed up."""
    _proxy, url = wire
    plain, hooked = (create_engine(url, connect_args=CONNECT_ARGS, pool_size=1) for _ in "ab")
    install_engine_hooks(hooked)
    for engine in (plain, hooked):
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    yield plain, hooked
    plain.dispose()
    hooked.dispose()


def trips_of(wire: Wire, work: Callable[[], object]) -> list[Trip]:
    wire.taken()
    work()
    return wire.taken()


def sql_of(trips: list[Trip]) -> list[list[str]]:
    return [trip.sql for trip in trips]


def assert_tenant_rides_with_begin(hooked: list[Trip], plain: list[Trip], tenant: object) -> None:
    """Same number of round trips; the first is BEGIN + set_config; set_config nowhere else."""
    assert len(hooked) == len(plain), (sql_of(hooked), sql_of(plain))
    assert hooked[0].sql == begin_with(tenant), sql_of(hooked)
    assert plain[0].sql == ["BEGIN"], sql_of(plain)
    assert not [sql for trip in hooked[1:] for sql in trip.sql if "set_config" in sql]


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", [0, None])
def test_a_session_transaction_makes_the_round_trips_it_makes_without_pgkeel(
    wire: tuple[Wire, URL], engines: tuple[Engine, Engine], seeded: Seed, tenant: int | None
) -> None:
    proxy, _url = wire
    plain, hooked = engines
    pgkeel_sessions, plain_sessions = create_sessionmaker(hooked), sessionmaker(plain)
    scope = seeded.tenants[0] if tenant is not None else None

    def read(sessions: sessionmaker[Session]) -> Callable[[], object]:
        def work() -> object:
            with sessions() as session:
                return session.execute(SETTING).scalar()

        return work

    with tenant_context(scope) if scope else nullcontext():
        hooked_trips = trips_of(proxy, read(pgkeel_sessions))
        plain_trips = trips_of(proxy, read(plain_sessions))
    assert_tenant_rides_with_begin(hooked_trips, plain_trips, scope)
    assert len(hooked_trips) == 3  # BEGIN + set_config, the statement, ROLLBACK


def test_a_core_transaction_makes_the_round_trips_it_makes_without_pgkeel(
    wire: tuple[Wire, URL], engines: tuple[Engine, Engine], seeded: Seed
) -> None:
    proxy, _url = wire
    plain, hooked = engines

    def work(engine: Engine) -> Callable[[], object]:
        def run() -> object:
            with engine.begin() as connection:
                connection.execute(SETTING).scalar()
                return connection.execute(TENANTS_SEEN).all()

        return run

    with tenant_context(seeded.tenants[1]):
        hooked_trips = trips_of(proxy, work(hooked))
        plain_trips = trips_of(proxy, work(plain))
    assert_tenant_rides_with_begin(hooked_trips, plain_trips, seeded.tenants[1])
    assert len(hooked_trips) == 4  # BEGIN + set_config, two statements, COMMIT


def test_an_async_session_transaction_makes_the_round_trips_it_makes_without_pgkeel(
    wire: tuple[Wire, URL], seeded: Seed
) -> None:
    proxy, url = wire

    async def read(engine: AsyncEngine, *, hooked: bool) -> object:
        async with engine.connect() as connection:  # warm up: the dialect's first queries
            await connection.execute(text("SELECT 1"))
        proxy.taken()
        if not hooked:
            async with engine.connect() as connection:
                return (await connection.execute(SETTING)).scalar()
        async with create_sessionmaker(engine)() as session:
            return (await session.execute(SETTING)).scalar()

    def run(*, hooked: bool) -> tuple[object, list[Trip]]:
        async def main() -> object:
            engine = create_async_engine(url, connect_args=CONNECT_ARGS, pool_size=1)
            try:
                return await read(engine, hooked=hooked)
            finally:
                await engine.dispose()

        with tenant_context(seeded.tenants[2]):
            seen = asyncio.run(main())
        return seen, proxy.taken()

    seen, hooked_trips = run(hooked=True)
    unset, plain_trips = run(hooked=False)
    assert seen == str(seeded.tenants[2])
    assert unset in {None, ""}
    assert_tenant_rides_with_begin(hooked_trips, plain_trips, seeded.tenants[2])


def test_the_statement_is_sent_after_the_tenant_is_in_force(
    wire: tuple[Wire, URL], engines: tuple[Engine, Engine], seeded: Seed
) -> None:
    """The first round trip holds BEGIN and set_config only; the statement comes after it."""
    proxy, _url = wire
    _plain, hooked = engines
    with tenant_context(seeded.tenants[0]), create_sessionmaker(hooked)() as session:
        proxy.taken()
        rows = session.scalars(select(Customer)).all()
        trips = proxy.taken()
    assert {row.tenant_id for row in rows} == {seeded.tenants[0]}
    assert trips[0].sql == begin_with(seeded.tenants[0])
    assert "FROM customers" in trips[1].sql[0]


def test_an_invalid_tenant_sends_nothing(
    wire: tuple[Wire, URL], engines: tuple[Engine, Engine]
) -> None:
    proxy, _url = wire
    _plain, hooked = engines
    proxy.taken()
    with pytest.raises(TypeError, match="a tenant id must be a uuid"):  # noqa: SIM117
        with tenant_context("tenant 42"), create_sessionmaker(hooked)() as session:
            session.execute(TENANTS_SEEN)
    assert proxy.taken() == []


# -- a failing set_config: the statement never runs ------------------------------------------


@pytest.fixture(scope="module")
def no_set_config_db(
    pgkeel_server_url: URL, pgkeel_database_prefix: str, runtime_role: str
) -> Iterator[URL]:
    """A database where the runtime role may not call set_config, with a sequence to probe."""
    name = f"{pgkeel_database_prefix}_no_set_config"
    url = create_database(pgkeel_server_url, name)
    owner = create_engine(url)
    try:
        with owner.begin() as connection:
            connection.execute(text("CREATE SEQUENCE probe"))
            connection.execute(text(f'GRANT USAGE ON SEQUENCE probe TO "{runtime_role}"'))
            connection.execute(
                text("REVOKE EXECUTE ON FUNCTION set_config(text, text, boolean) FROM PUBLIC")
            )
    finally:
        owner.dispose()
    yield url
    drop_database(pgkeel_server_url, name)


def run_on(url: URL, statement: str) -> object:
    """``statement``'s value, in a transaction committed on a connection of its own (no hooks)."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def _session_probe(engine: Engine, _url: URL) -> None:
    with create_sessionmaker(engine)() as session:
        session.execute(text("SELECT nextval('probe')"))


def _core_probe(engine: Engine, _url: URL) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT nextval('probe')"))


def _async_probe(_engine: Engine, url: URL) -> None:
    async def main() -> None:
        engine = create_async_engine(url)
        try:
            async with create_sessionmaker(engine)() as session:
                await session.execute(text("SELECT nextval('probe')"))
        finally:
            await engine.dispose()

    asyncio.run(main())


PROBES: dict[str, Callable[[Engine, URL], None]] = {
    "session": _session_probe,
    "core": _core_probe,
    "async session": _async_probe,
}


@pytest.mark.parametrize("kind", PROBES)
@pytest.mark.parametrize("tenant", [0, None])
def test_a_failing_set_config_means_the_statement_never_ran(
    no_set_config_db: URL, runtime_role: str, seeded: Seed, kind: str, tenant: int | None
) -> None:
    url = no_set_config_db.set(username=runtime_role, password=None)
    engine = install_engine_hooks(create_engine(url))
    probe = PROBES[kind]
    try:
        with (
            tenant_context(seeded.tenants[0]) if tenant is not None else nullcontext(),
            pytest.raises((DBAPIError, psycopg.Error), match="set_config"),
        ):
            probe(engine, url)
    finally:
        engine.dispose()
    assert run_on(no_set_config_db, "SELECT is_called FROM probe") is False
    run_on(url, "SELECT nextval('probe')")  # the probe itself works, without pgkeel
    assert run_on(no_set_config_db, "SELECT is_called FROM probe") is True
    run_on(no_set_config_db, "ALTER SEQUENCE probe RESTART")


# -- what the first statement of a transaction may be ----------------------------------------


def test_transaction_characteristics_are_kept(
    runtime_engine: Engine, runtime_sessions: sessionmaker[Session], seeded: Seed
) -> None:
    """The BEGIN pgkeel sends is psycopg's: isolation level, read only, deferrable."""
    query = text(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'),"
        " current_setting('transaction_deferrable'), current_setting('app.tenant_id')"
    )
    tenant = str(seeded.tenants[1])
    with tenant_context(seeded.tenants[1]):
        options: dict[str, Any] = {
            "isolation_level": "SERIALIZABLE",
            "postgresql_readonly": True,
            "postgresql_deferrable": True,
        }
        with runtime_engine.connect().execution_options(**options) as connection:
            assert connection.execute(query).one() == ("serializable", "on", "on", tenant)
        with runtime_sessions(
            bind=runtime_engine.execution_options(isolation_level="REPEATABLE READ")
        ) as session:
            assert session.execute(query).one() == ("repeatable read", "off", "off", tenant)
        with runtime_sessions() as session:
            assert session.execute(query).one() == ("read committed", "off", "off", tenant)


def _first(connection: Connection, statement: Any, *args: Any) -> list[Any]:
    return list(connection.execute(statement, *args).scalars())


def test_a_server_side_cursor_first(
    runtime_engine: Engine, runtime_sessions: sessionmaker[Session], seeded: Seed
) -> None:
    with tenant_context(seeded.tenants[2]):
        with runtime_sessions() as session:
            rows = session.scalars(select(Customer).execution_options(yield_per=1)).all()
            assert {row.tenant_id for row in rows} == {seeded.tenants[2]}
        with runtime_engine.connect() as connection:
            streamed = connection.execution_options(stream_results=True)
            assert _first(streamed, TENANTS_SEEN) == [seeded.tenants[2]]


def test_executemany_and_insertmanyvalues_first(
    runtime_engine: Engine, runtime_sessions: sessionmaker[Session], seeded: Seed
) -> None:
    labels = [f"rt-{uuid.uuid4()}" for _ in range(3)]
    with tenant_context(seeded.tenants[0]):
        with runtime_engine.connect() as connection:
            connection.execute(
                text("INSERT INTO tags (id, label) VALUES (gen_random_uuid(), :label)"),
                [{"label": label} for label in labels],
            )
            written = text("SELECT tenant_id FROM tags WHERE label = ANY(:labels)")
            assert _first(connection, written, {"labels": labels}) == [seeded.tenants[0]] * 3
            connection.rollback()
        with runtime_sessions() as session:
            returned = session.execute(
                insert(Tag).returning(Tag.tenant_id, sort_by_parameter_order=True),
                [{"label": label} for label in labels],
            ).scalars()
            assert list(returned) == [seeded.tenants[0]] * 3
            session.rollback()


def test_a_savepoint_or_a_two_phase_transaction_first(
    hooked_runtime_engine: Engine, seeded: Seed
) -> None:
    with tenant_context(seeded.tenants[1]), hooked_runtime_engine.connect() as connection:
        savepoint = connection.begin_nested()
        assert _first(connection, TENANTS_SEEN) == [seeded.tenants[1]]
        savepoint.rollback()
        assert _first(connection, TENANTS_SEEN) == [seeded.tenants[1]]
        connection.rollback()
        two_phase = connection.begin_twophase()
        assert _first(connection, TENANTS_SEEN) == [seeded.tenants[1]]
        two_phase.rollback()


def test_the_transaction_after_a_failed_one(hooked_runtime_engine: Engine, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[2]), hooked_runtime_engine.connect() as connection:
        with pytest.raises(DBAPIError, match="division by zero"):
            connection.execute(text("SELECT 1 / 0"))
        connection.rollback()
        assert _first(connection, SETTING) == [str(seeded.tenants[2])]


def test_an_async_stream_first(isolation_db: URL, runtime_role: str, seeded: Seed) -> None:
    url = isolation_db.set(username=runtime_role, password=None)

    async def main() -> list[uuid.UUID]:
        engine = create_async_engine(url)
        try:
            async with create_sessionmaker(engine)() as session:
                stream = await session.stream_scalars(select(Customer))
                return [row.tenant_id async for row in stream]
        finally:
            await engine.dispose()

    with tenant_context(seeded.tenants[1]):
        assert set(asyncio.run(main())) == {seeded.tenants[1]}


def test_a_raw_driver_cursor_on_a_session_connection_has_the_tenant(
    runtime_sessions: sessionmaker[Session], seeded: Seed
) -> None:
    """A session sets the tenant as its transaction begins, before any statement of its own."""
    with tenant_context(seeded.tenants[0]), runtime_sessions() as session:
        driver = session.connection().connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        row = driver.execute("SELECT DISTINCT tenant_id FROM customers").fetchall()
        assert row == [(seeded.tenants[0],)]
