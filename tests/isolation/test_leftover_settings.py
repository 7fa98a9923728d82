"""A session-level ``app.tenant_id`` left on a connection never reaches a hooked transaction.

A stray ``SET app.tenant_id`` or ``set_config(..., false)`` anywhere in the application stays on
the server connection after its transaction. Every transaction of a hooked Session or Core
connection sets the value in force first (empty when no tenant is set), ``AUTOCOMMIT`` is
refused in a tenant context and cleaned before each statement outside one, and
``ALL_TENANTS`` on a role that row-level security binds is refused on every path. Each case
runs on a direct connection and behind a real PgBouncer in transaction-pooling mode, where the
stray value comes from another client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from psycopg import pq
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pgkeel import ALL_TENANTS, TenantNotSetError, create_sessionmaker, tenant_context
from pgkeel.session import install_engine_hooks
from pgkeel.testing.pgbouncer import CONNECT_ARGS, PgBouncer
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer

TENANTS_SEEN = text("SELECT DISTINCT tenant_id FROM customers ORDER BY 1")
STRAY = {
    "SET": "SET app.tenant_id = '{}'",
    "set_config false": "SELECT set_config('app.tenant_id', '{}', false)",
}


@pytest.fixture(params=["direct", "PgBouncer"])
def engines(
    request: pytest.FixtureRequest, isolation_db: URL, runtime_role: str, seeded: Seed
) -> Iterator[tuple[Engine, Engine]]:
    """(stray client, hooked client): the same server connection, one or two clients."""
    if request.param == "direct":
        url = isolation_db.set(username=runtime_role, password=None)
        engine = create_engine(url, pool_size=1, max_overflow=0)
        yield engine, install_engine_hooks(engine)
        engine.dispose()
        return
    bouncer = request.getfixturevalue("single_connection_bouncer")
    url = bouncer.url_for(isolation_db.database or "", user=runtime_role)
    stray, hooked = (create_engine(url, connect_args=CONNECT_ARGS) for _ in range(2))
    yield stray, install_engine_hooks(hooked)
    stray.dispose()
    hooked.dispose()


def leave_a_value(engine: Engine, how: str, tenant: object) -> None:
    with engine.connect() as connection:
        connection.exec_driver_sql(STRAY[how].format(tenant))
        connection.commit()


@pytest.mark.parametrize("how", STRAY)
def test_a_core_connection_without_a_tenant_sees_no_rows(
    engines: tuple[Engine, Engine], how: str, seeded: Seed
) -> None:
    stray, hooked = engines
    leave_a_value(stray, how, seeded.tenants[1])
    with hooked.connect() as connection:
        assert connection.execute(TENANTS_SEEN).all() == []


@pytest.mark.parametrize("how", STRAY)
def test_a_core_connection_of_another_tenant_sees_only_its_own(
    engines: tuple[Engine, Engine], how: str, seeded: Seed
) -> None:
    stray, hooked = engines
    leave_a_value(stray, how, seeded.tenants[1])
    with tenant_context(seeded.tenants[2]), hooked.connect() as connection:
        assert connection.execute(TENANTS_SEEN).scalars().all() == [seeded.tenants[2]]
        connection.commit()
        assert connection.execute(TENANTS_SEEN).scalars().all() == [seeded.tenants[2]]


def test_a_session_without_a_tenant_sees_no_rows(
    engines: tuple[Engine, Engine], seeded: Seed
) -> None:
    stray, hooked = engines
    leave_a_value(stray, "SET", seeded.tenants[1])
    with create_sessionmaker(hooked)() as session:
        assert session.execute(TENANTS_SEEN).all() == []


def test_autocommit_in_a_tenant_context_is_refused(
    engines: tuple[Engine, Engine], seeded: Seed
) -> None:
    stray, hooked = engines
    leave_a_value(stray, "SET", seeded.tenants[1])
    autocommit = hooked.execution_options(isolation_level="AUTOCOMMIT")
    with tenant_context(seeded.tenants[2]):
        with autocommit.connect() as connection, pytest.raises(TenantNotSetError) as caught:
            connection.execute(TENANTS_SEEN)
        with create_sessionmaker(autocommit)() as session, pytest.raises(TenantNotSetError):
            session.scalars(select(Customer)).all()
    assert "AUTOCOMMIT" in str(caught.value)
    assert "Fix: run tenant work in a transaction" in str(caught.value)


def test_autocommit_without_a_tenant_clears_the_left_over_value(
    isolation_db: URL, runtime_role: str, seeded: Seed
) -> None:
    engine = create_engine(isolation_db.set(username=runtime_role, password=None), pool_size=1)
    try:
        leave_a_value(engine, "SET", seeded.tenants[1])
        autocommit = install_engine_hooks(engine).execution_options(isolation_level="AUTOCOMMIT")
        with autocommit.connect() as connection:
            assert connection.execute(TENANTS_SEEN).all() == []
            assert connection.execute(TENANTS_SEEN).all() == []
    finally:
        engine.dispose()


# -- ALL_TENANTS on a role that row-level security binds ---------------------------------------


NOT_A_COMMAND_WORD = {
    "in a literal": "SELECT DISTINCT tenant_id FROM customers WHERE name <> 'built concurrently'",
    "in a comment": "/* refreshed CONCURRENTLY */ SELECT DISTINCT tenant_id FROM customers",
    "in a line comment": "SELECT DISTINCT tenant_id FROM customers -- not VACUUM, CONCURRENTLY",
    "a write": "UPDATE customers SET name = name WHERE name <> 'concurrently' RETURNING tenant_id",
    "after a comment": "-- nightly\n/* report */ SELECT DISTINCT tenant_id FROM customers",
}


@pytest.mark.parametrize("how", STRAY)
@pytest.mark.parametrize("statement", NOT_A_COMMAND_WORD.values(), ids=NOT_A_COMMAND_WORD)
def test_autocommit_statement_is_cleared_whatever_words_it_holds(
    engines: tuple[Engine, Engine], how: str, statement: str, seeded: Seed
) -> None:
    """Only the first words make a statement one that runs outside a transaction block.

    ``CONCURRENTLY`` or ``VACUUM`` in a literal or a comment, and comments ahead of the query,
    leave it in the transaction that clears the value another client left behind.
    """
    stray, hooked = engines
    leave_a_value(stray, how, seeded.tenants[1])
    autocommit = hooked.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        assert connection.exec_driver_sql(statement).all() == []


CHAINS = ["COMMIT AND CHAIN", "END AND CHAIN", "ROLLBACK AND CHAIN", "/* x */ commit and chain"]


@pytest.mark.parametrize("chain", CHAINS)
def test_a_chained_transaction_gets_the_tenant_again(
    engines: tuple[Engine, Engine], chain: str, seeded: Seed
) -> None:
    """``COMMIT AND CHAIN`` keeps the driver in a transaction that lost the tenant's value."""
    stray, hooked = engines
    leave_a_value(stray, "SET", seeded.tenants[1])
    with tenant_context(seeded.tenants[0]), create_sessionmaker(hooked)() as session:
        assert session.scalars(TENANTS_SEEN).all() == [seeded.tenants[0]]
        session.execute(text(chain))
        assert session.scalars(TENANTS_SEEN).all() == [seeded.tenants[0]]
    with hooked.connect() as connection:  # no tenant: the chained transaction sees nothing
        assert connection.execute(TENANTS_SEEN).all() == []
        connection.exec_driver_sql(chain)
        assert connection.execute(TENANTS_SEEN).all() == []


CONTROL_AMONG_STATEMENTS = {
    "rollback to savepoint last": "SELECT 1; ROLLBACK TO SAVEPOINT s",
    "commit then a read": "COMMIT; SELECT DISTINCT tenant_id FROM customers",
    "a read after a commit": "SELECT 1; commit; SELECT DISTINCT tenant_id FROM customers",
    "begin in the middle": "SELECT 1;\n-- next\nBEGIN",
    "release": "SELECT 1; RELEASE SAVEPOINT s",
}


@pytest.mark.parametrize(
    "statement", CONTROL_AMONG_STATEMENTS.values(), ids=CONTROL_AMONG_STATEMENTS
)
def test_transaction_control_among_statements_is_refused(
    engines: tuple[Engine, Engine], statement: str, seeded: Seed
) -> None:
    """Statements after it in the same text would run before pgkeel could set the tenant."""
    _stray, hooked = engines
    with tenant_context(seeded.tenants[0]), hooked.connect() as connection:
        connection.exec_driver_sql("SAVEPOINT s")
        with pytest.raises(TenantNotSetError) as refused:
            connection.exec_driver_sql(statement)
        assert "Fix: send transaction control as a statement of its own" in str(refused.value)


SEMICOLONS_THAT_END_NOTHING = {
    "in a literal": "SELECT DISTINCT tenant_id FROM customers WHERE name <> 'a; COMMIT'",
    "in an escape string": "SELECT DISTINCT tenant_id FROM customers WHERE name <> E'\\'; END'",
    "in a comment": "SELECT DISTINCT tenant_id FROM customers /* ; rollback */",
    "in a dollar quote": "SELECT DISTINCT tenant_id FROM customers WHERE name <> $q$;END$q$",
    "a last one": "SELECT DISTINCT tenant_id FROM customers;",
}


@pytest.mark.parametrize(
    "statement", SEMICOLONS_THAT_END_NOTHING.values(), ids=SEMICOLONS_THAT_END_NOTHING
)
def test_a_semicolon_inside_a_literal_or_comment_is_no_statement(
    engines: tuple[Engine, Engine], statement: str, seeded: Seed
) -> None:
    _stray, hooked = engines
    with tenant_context(seeded.tenants[0]), hooked.connect() as connection:
        assert connection.exec_driver_sql(statement).scalars().all() == [seeded.tenants[0]]


def test_a_rolled_back_savepoint_in_a_text_of_its_own_restores_no_tenant(
    engines: tuple[Engine, Engine], seeded: Seed
) -> None:
    _stray, hooked = engines
    with hooked.connect() as connection:
        with tenant_context(seeded.tenants[1]):
            connection.execute(TENANTS_SEEN).all()
            connection.exec_driver_sql("SAVEPOINT s")
        with tenant_context(seeded.tenants[0]):
            assert connection.execute(TENANTS_SEEN).scalars().all() == [seeded.tenants[0]]
            connection.exec_driver_sql("ROLLBACK TO SAVEPOINT s")
            assert connection.execute(TENANTS_SEEN).scalars().all() == [seeded.tenants[0]]


@pytest.mark.parametrize("first", ["REINDEX TABLE pg_temp.scratch", "CLUSTER pg_temp.scratch"])
def test_a_command_run_outside_transactions_does_not_carry_the_statements_after_it(
    engines: tuple[Engine, Engine], first: str, seeded: Seed
) -> None:
    """``REINDEX`` runs in a transaction block: what follows it in its text is cleared too."""
    _stray, hooked = engines
    autocommit = hooked.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:  # one server connection, even behind PgBouncer
        connection.exec_driver_sql(
            "DROP TABLE IF EXISTS pg_temp.scratch, pg_temp.copied;"
            " CREATE TEMP TABLE scratch (x int PRIMARY KEY);"
            " CREATE INDEX scratch_x ON scratch (x); CLUSTER scratch USING scratch_x"
        )
        connection.exec_driver_sql(STRAY["SET"].format(seeded.tenants[1]))
        connection.exec_driver_sql(
            f"{first}; CREATE TEMP TABLE copied AS SELECT DISTINCT tenant_id FROM customers"
        )
        copied = connection.exec_driver_sql("SELECT * FROM copied").all()
        connection.exec_driver_sql("RESET app.tenant_id; DROP TABLE scratch, copied")
    assert copied == []


def test_all_tenants_on_a_core_connection_is_refused(
    engines: tuple[Engine, Engine], seeded: Seed
) -> None:
    _stray, hooked = engines
    with (
        tenant_context(ALL_TENANTS),
        hooked.connect() as connection,
        pytest.raises(TenantNotSetError, match="BYPASSRLS"),
    ):
        connection.execute(TENANTS_SEEN)


def test_switching_to_all_tenants_inside_a_transaction_is_refused(
    engines: tuple[Engine, Engine], seeded: Seed
) -> None:
    _stray, hooked = engines
    with hooked.connect() as connection:
        assert connection.execute(TENANTS_SEEN).all() == []
        with tenant_context(ALL_TENANTS), pytest.raises(TenantNotSetError, match="BYPASSRLS"):
            connection.execute(TENANTS_SEEN)
    with create_sessionmaker(hooked)() as session:
        with tenant_context(seeded.tenants[0]):
            assert session.scalars(select(Customer)).all()
        with tenant_context(ALL_TENANTS), pytest.raises(TenantNotSetError, match="BYPASSRLS"):
            session.execute(TENANTS_SEEN)


def test_all_tenants_in_autocommit_is_refused(engines: tuple[Engine, Engine]) -> None:
    _stray, hooked = engines
    autocommit = hooked.execution_options(isolation_level="AUTOCOMMIT")
    with (
        tenant_context(ALL_TENANTS),
        autocommit.connect() as connection,
        pytest.raises(TenantNotSetError, match="BYPASSRLS"),
    ):
        connection.execute(TENANTS_SEEN)


def test_all_tenants_on_a_bypassing_role_still_works(owner_engine: Engine, seeded: Seed) -> None:
    hooked = install_engine_hooks(owner_engine)
    with tenant_context(ALL_TENANTS), hooked.connect() as connection:
        assert set(connection.execute(TENANTS_SEEN).scalars()) == set(seeded.tenants)
    with tenant_context(ALL_TENANTS), Session(hooked) as session:
        assert set(session.execute(TENANTS_SEEN).scalars()) == set(seeded.tenants)


# -- AUTOCOMMIT behind PgBouncer: another client's stray value between two statements -----------

AUTOCOMMIT_PROBE = text(
    "SELECT current_setting('app.tenant_id', true), (SELECT count(*) FROM customers)"
)


@pytest.fixture
def two_server_connections(
    pgbouncer_factory: Callable[..., PgBouncer], isolation_db: URL, runtime_role: str
) -> Iterator[URL]:
    """PgBouncer with two server connections: a stray client runs beside a hooked statement."""
    bouncer = pgbouncer_factory(isolation_db, users=[runtime_role], pool_size=2)
    yield bouncer.url_for(isolation_db.database or "", user=runtime_role)
    bouncer.stop()


@pytest.mark.pgbouncer
@pytest.mark.parametrize("how", STRAY)
def test_autocommit_without_a_tenant_never_meets_a_stray_value(
    two_server_connections: URL, how: str, seeded: Seed
) -> None:
    """A stray SET lands between pgkeel's clearing and the statement: the statement never sees it.

    The stray client acts right before each hooked statement reaches the driver; PgBouncer hands
    it the server connection that was free, the one a separate clearing statement would have
    just used and released.
    """
    stray = create_engine(two_server_connections, connect_args=CONNECT_ARGS)
    hooked = install_engine_hooks(create_engine(two_server_connections, connect_args=CONNECT_ARGS))
    autocommit = hooked.execution_options(isolation_level="AUTOCOMMIT")

    def interleave(_cursor: object, statement: str, *_args: object) -> None:
        if "count(*) FROM customers" in statement:
            leave_a_value(stray, how, seeded.tenants[1])

    # The dialect's last step before the driver, after pgkeel's own hook there (it goes first).
    event.listen(hooked, "do_execute", interleave)
    event.listen(hooked, "do_execute_no_params", interleave)
    try:
        with autocommit.connect() as connection:
            for _ in range(5):
                assert connection.execute(AUTOCOMMIT_PROBE).one() == ("", 0)
        with create_sessionmaker(autocommit)() as session:
            assert session.execute(AUTOCOMMIT_PROBE).one() == ("", 0)
    finally:
        stray.dispose()
        hooked.dispose()


def test_autocommit_statements_that_refuse_transactions_still_run(
    isolation_db: URL, seeded: Seed
) -> None:
    """VACUUM, CREATE INDEX CONCURRENTLY: run as they are, outside any transaction block."""
    engine = install_engine_hooks(create_engine(isolation_db))
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with autocommit.connect() as connection:
            connection.exec_driver_sql("VACUUM customers")
            connection.exec_driver_sql("CREATE INDEX CONCURRENTLY ix_probe ON customers (name)")
            connection.exec_driver_sql("DROP INDEX CONCURRENTLY ix_probe")
            # the same behind comments: told by their first words, past the comments
            connection.exec_driver_sql("-- maintenance\nVACUUM customers")
            connection.exec_driver_sql(
                "/* deploy */ CREATE UNIQUE INDEX CONCURRENTLY ix_probe ON customers (id)"
            )
            connection.exec_driver_sql("/* deploy */ DROP INDEX CONCURRENTLY ix_probe")
            connection.exec_driver_sql("CREATE TABLE parted (id int) PARTITION BY RANGE (id)")
            connection.exec_driver_sql(
                'CREATE TABLE "parted 1" PARTITION OF parted FOR VALUES FROM (0) TO (10)'
            )
            connection.exec_driver_sql(
                '/* archive */ ALTER TABLE parted DETACH PARTITION "parted 1" CONCURRENTLY'
            )
            connection.exec_driver_sql('DROP TABLE parted, "parted 1"')
            connection.exec_driver_sql("BEGIN")  # the application's own transaction
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
            connection.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()


def test_a_failed_autocommit_statement_leaves_no_transaction_open(
    isolation_db: URL, runtime_role: str, seeded: Seed
) -> None:
    url = isolation_db.set(username=runtime_role, password=None)
    engine = install_engine_hooks(create_engine(url, pool_size=1, max_overflow=0))
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with autocommit.connect() as connection:
            with pytest.raises(DBAPIError):
                connection.execute(text("SELECT 1 / 0"))
            status = connection.connection.driver_connection.info.transaction_status  # type: ignore[union-attr]
            assert status == pq.TransactionStatus.IDLE
            assert connection.execute(TENANTS_SEEN).all() == []
    finally:
        engine.dispose()
