"""The tenant hook sits on the dialect, right before the driver: paths around it.

pgkeel recognises a transaction by SQLAlchemy's transaction object while the driver's own
transaction is open, and a ``ROLLBACK TO SAVEPOINT`` by its text, rather than by engine events.
These tests take the ways a transaction can start or end, or a statement can be run, without
SQLAlchemy's ``begin``/``commit``/``rollback`` events seeing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from pgkeel import create_sessionmaker, tenant_context
from pgkeel.session import install_engine_hooks
from tests.isolation.conftest import Seed

SETTING = text("SELECT current_setting('app.tenant_id', true)")
VISIBLE = text("SELECT DISTINCT tenant_id FROM customers")


@pytest.fixture
def runtime_url(isolation_db: URL, runtime_role: str, seeded: Seed) -> URL:
    return isolation_db.set(username=runtime_role, password=None)


@pytest.fixture
def hooked(runtime_url: URL) -> Iterator[Engine]:
    """A runtime-role engine of this test's own, pgkeel's hooks on it."""
    engine = install_engine_hooks(create_engine(runtime_url, pool_size=1, max_overflow=0))
    yield engine
    engine.dispose()


def test_a_transaction_ended_on_the_driver_gets_the_tenant_again(
    hooked: Engine, seeded: Seed
) -> None:
    """The driver commits behind SQLAlchemy's back and a session-level value is left behind.

    SQLAlchemy's transaction goes on, but the driver begins a new one at the next statement:
    pgkeel sees that the driver had no transaction open and sets the tenant for the new one.
    """
    mine, other = seeded.tenants[0], seeded.tenants[1]
    with tenant_context(mine), hooked.connect() as connection:
        assert connection.execute(SETTING).scalar() == str(mine)
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.commit()
        driver.execute(f"SET app.tenant_id = '{other}'")  # a session-level value, committed
        driver.commit()
        assert connection.execute(SETTING).scalar() == str(mine)
        assert connection.execute(VISIBLE).scalars().all() == [mine]


@pytest.mark.parametrize(
    "rollback",
    [
        "ROLLBACK TO SAVEPOINT before_second",
        "/* undo */ ROLLBACK TO SAVEPOINT before_second",
        "-- undo\n  rollback to before_second",
    ],
)
def test_a_savepoint_rolled_back_in_sql_text_cannot_restore_another_tenant(
    hooked: Engine, seeded: Seed, rollback: str
) -> None:
    """``ROLLBACK TO SAVEPOINT`` written by the application (after a comment, in lower case...)."""
    first, second = seeded.tenants[0], seeded.tenants[1]
    with hooked.connect() as connection:
        with tenant_context(first):
            assert connection.execute(SETTING).scalar() == str(first)
        connection.exec_driver_sql("SAVEPOINT before_second")
        with tenant_context(second):
            assert connection.execute(SETTING).scalar() == str(second)
            connection.exec_driver_sql(rollback)  # restores first
            assert connection.execute(SETTING).scalar() == str(second)
            assert connection.execute(VISIBLE).scalars().all() == [second]


def test_a_savepoint_rolled_back_in_the_outer_context_cannot_leave_it_in_force(
    hooked: Engine, seeded: Seed
) -> None:
    """Tenant B set inside a savepoint, the savepoint rolled back back in A's context, then B.

    ``ROLLBACK TO SAVEPOINT`` brings back A's value whatever context it is sent in: the next
    statement in B's context sets B again, and sees only B's rows.
    """
    first, second = seeded.tenants[0], seeded.tenants[1]
    with tenant_context(first), hooked.connect() as connection:
        assert connection.execute(SETTING).scalar() == str(first)
        savepoint = connection.begin_nested()
        with tenant_context(second):
            assert connection.execute(VISIBLE).scalars().all() == [second]
        savepoint.rollback()
        with tenant_context(second):
            assert connection.execute(SETTING).scalar() == str(second)
            assert connection.execute(VISIBLE).scalars().all() == [second]


def _fail_a_nested_step_for(session: Session, tenant: object) -> None:
    """A savepoint that reads as ``tenant``, then fails once that tenant's context has ended."""
    with session.begin_nested():
        session.execute(text("SELECT 1"))
        with tenant_context(tenant):
            session.execute(VISIBLE)
        message = "the nested step failed"
        raise RuntimeError(message)


def test_a_failed_nested_step_then_work_for_another_tenant_stays_in_it(
    runtime_url: URL, seeded: Seed
) -> None:
    """A handler of tenant A runs a step for B in a savepoint; the step fails; B's work follows.

    The savepoint is rolled back when the step's context (B) has ended: B's read and raw insert
    that follow are B's, not A's.
    """
    first, second = seeded.tenants[0], seeded.tenants[1]
    engine = create_engine(runtime_url)
    try:
        with tenant_context(first), create_sessionmaker(engine)() as session:
            session.execute(text("SELECT 1"))
            with pytest.raises(RuntimeError, match="the nested step failed"):
                _fail_a_nested_step_for(session, second)  # ROLLBACK TO SAVEPOINT, in A's context
            with tenant_context(second):
                seen = session.scalars(VISIBLE).all()
                written = session.execute(
                    text(
                        "INSERT INTO tags (id, label) VALUES (gen_random_uuid(), 'x') "
                        "RETURNING tenant_id"
                    )
                ).scalar_one()
            session.rollback()
    finally:
        engine.dispose()
    assert (seen, written) == ([second], second)


def test_a_listener_that_runs_statements_itself_still_finds_the_tenant_set(
    runtime_url: URL, seeded: Seed
) -> None:
    """An application's ``do_execute`` listener, registered first, that runs the statement."""
    engine = create_engine(runtime_url)
    ran: list[str] = []

    def run_it_myself(cursor: Any, statement: str, parameters: Any, _context: object) -> bool:
        ran.append(statement)
        cursor.execute(statement, parameters)
        return True

    event.listen(engine, "do_execute", run_it_myself)
    install_engine_hooks(engine)
    try:
        with tenant_context(seeded.tenants[2]), engine.connect() as connection:
            assert connection.execute(VISIBLE).scalars().all() == [seeded.tenants[2]]
        assert ran  # the application's listener did run the statement
    finally:
        engine.dispose()


def test_copies_made_by_execution_options_share_the_hooks(runtime_url: URL, seeded: Seed) -> None:
    """An engine's ``execution_options()`` copies share its dialect, so its hooks, once."""
    engine = create_engine(runtime_url)
    copy = install_engine_hooks(engine).execution_options(isolation_level="REPEATABLE READ")
    install_engine_hooks(copy)  # no second set of listeners
    try:
        hooks = [fn for fn in engine.dialect.dispatch.do_execute if "pgkeel" in fn.__module__]
        assert len(hooks) == 1
        with tenant_context(seeded.tenants[1]), copy.connect() as connection:
            assert connection.execute(VISIBLE).scalars().all() == [seeded.tenants[1]]
    finally:
        engine.dispose()


def test_a_new_engine_first_connects_inside_a_tenant_context(
    runtime_url: URL, seeded: Seed
) -> None:
    """The dialect's own checks on the first connection are not the application's statements."""
    engine = install_engine_hooks(create_engine(runtime_url))
    try:
        with tenant_context(seeded.tenants[0]), engine.connect() as connection:
            assert connection.execute(VISIBLE).scalars().all() == [seeded.tenants[0]]
        assert engine.dialect.server_version_info is not None
        assert engine.dialect.server_version_info >= (13,)
    finally:
        engine.dispose()
