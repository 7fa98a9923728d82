"""Tenant isolation: fail closed without a tenant, no cross-tenant writes, ALL_TENANTS."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, event, exists, insert, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, joinedload, sessionmaker

from pgkeel import (
    ALL_TENANTS,
    CrossTenantWriteError,
    TenantNotSetError,
    create_sessionmaker,
    tenant_context,
)
from pgkeel.database import conninfo
from pgkeel.tenancy import current_tenant
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice, Tenant

# -- the context ------------------------------------------------------------------------------


def test_contexts_nest_and_restore() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert current_tenant() is None
    with tenant_context(first):
        with tenant_context(str(second)) as inner:
            assert inner == second == current_tenant()
        assert current_tenant() == first
    assert current_tenant() is None


@pytest.mark.parametrize("bad", [None, "", "not-a-uuid", 42])
def test_context_refuses_what_is_not_a_tenant(bad: object) -> None:
    with pytest.raises(TypeError, match="ALL_TENANTS"), tenant_context(bad):  # type: ignore[arg-type]
        pass


def test_each_thread_has_its_own_tenant() -> None:
    tenants = [uuid.uuid4() for _ in range(8)]
    barrier = threading.Barrier(len(tenants))
    seen: dict[uuid.UUID, object] = {}

    def work(tenant: uuid.UUID) -> None:
        with tenant_context(tenant):
            barrier.wait()
            seen[tenant] = current_tenant()

    threads = [threading.Thread(target=work, args=(t,)) for t in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {t: t for t in tenants}


def test_each_asyncio_task_has_its_own_tenant() -> None:
    tenants = [uuid.uuid4() for _ in range(8)]

    async def work(tenant: uuid.UUID) -> object:
        with tenant_context(tenant):
            for _ in range(5):
                await asyncio.sleep(0)  # every task runs between two reads
                assert current_tenant() == tenant
            return current_tenant()

    async def main() -> list[object]:
        return await asyncio.gather(*(work(t) for t in tenants))

    assert asyncio.run(main()) == tenants


# -- no tenant: fail closed -------------------------------------------------------------------


def test_orm_query_without_tenant_raises(session: Session, seeded: Seed) -> None:
    with pytest.raises(TenantNotSetError, match="tenant_context"):
        session.scalars(select(Invoice)).all()
    with pytest.raises(TenantNotSetError):
        session.get(Invoice, seeded.invoices[0, "live"])
    with pytest.raises(TenantNotSetError):
        session.scalar(select(exists().where(Invoice.number > 0)))


def test_non_tenant_models_work_without_tenant(session: Session, seeded: Seed) -> None:
    assert len(session.scalars(select(Tenant)).all()) == len(seeded.tenants)


def test_eager_load_of_tenant_rows_without_tenant_raises(session: Session) -> None:
    with pytest.raises(TenantNotSetError):
        session.scalars(select(Tenant).options(joinedload(Tenant.customers))).unique().all()
    tenant = session.scalars(select(Tenant)).first()
    assert tenant is not None
    with pytest.raises(TenantNotSetError):
        _ = tenant.customers


def test_identity_map_hit_without_tenant_raises(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[0]):
        session.get_one(Invoice, seeded.invoices[0, "live"])
    with pytest.raises(TenantNotSetError):
        session.get(Invoice, seeded.invoices[0, "live"])


def test_raw_sql_without_tenant_sees_nothing_and_writes_nothing(
    session: Session, seeded: Seed
) -> None:
    assert session.execute(text("SELECT count(*) FROM invoices")).scalar() == 0
    assert session.execute(text("UPDATE invoices SET amount = 1")).rowcount == 0  # type: ignore[attr-defined]
    assert session.execute(text("DELETE FROM invoices")).rowcount == 0  # type: ignore[attr-defined]
    with pytest.raises(TenantNotSetError, match="no tenant is set"):
        session.execute(
            text("INSERT INTO invoices (customer_id, number, amount) VALUES (:c, 1, 1)"),
            {"c": seeded.customers[0, "live"]},
        )


def test_raw_insert_naming_a_tenant_without_context_is_refused(
    session: Session, seeded: Seed
) -> None:
    with pytest.raises(TenantNotSetError):
        session.execute(
            text(
                "INSERT INTO invoices (tenant_id, customer_id, number, amount) "
                "VALUES (:t, :c, 1, 1)"
            ),
            {"t": seeded.tenants[0], "c": seeded.customers[0, "live"]},
        )


def test_orm_writes_without_tenant_raise(session: Session, seeded: Seed) -> None:
    session.add(Invoice(customer_id=seeded.customers[0, "live"], number=1))
    with pytest.raises(TenantNotSetError):
        session.flush()
    session.rollback()
    with pytest.raises(TenantNotSetError):
        session.execute(insert(Invoice).values(customer_id=seeded.customers[0, "live"], number=1))
    with pytest.raises(TenantNotSetError):
        session.execute(update(Invoice).values(amount=1))


def test_empty_setting_means_no_rows_and_no_writes(
    hooked_runtime_engine: Engine, seeded: Seed
) -> None:
    with hooked_runtime_engine.connect() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', '', true)"))
        assert connection.execute(text("SELECT count(*) FROM customers")).scalar() == 0
        with pytest.raises(TenantNotSetError):
            connection.execute(
                text("INSERT INTO tags (tenant_id, label) VALUES (:t, 'x')"),
                {"t": seeded.tenants[0]},
            )


def test_a_fresh_connection_without_setting_sees_nothing(
    isolation_db: URL, runtime_role: str, seeded: Seed
) -> None:
    url = isolation_db.set(username=runtime_role, password=None)
    with psycopg.connect(conninfo(url)) as raw:
        assert raw.execute("SELECT current_setting('app.tenant_id', true)").fetchone() == (None,)
        assert raw.execute("SELECT count(*) FROM invoices").fetchone() == (0,)


# -- one tenant: own rows only, no writes elsewhere --------------------------------------------


def test_new_objects_get_the_current_tenant(session: Session, seeded: Seed) -> None:
    tenant = seeded.tenants[0]
    outside = Invoice(customer_id=seeded.customers[0, "live"], number=5)
    with tenant_context(tenant):
        inside = Invoice(customer_id=seeded.customers[0, "live"], number=6)
        assert inside.tenant_id == tenant
        session.add_all([outside, inside])
        session.flush()
    assert outside.tenant_id == tenant


def test_raw_insert_inside_a_context_gets_the_tenant(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[1]):
        tenant = session.execute(
            text("INSERT INTO tags (label) VALUES ('raw') RETURNING tenant_id")
        ).scalar()
        assert tenant == seeded.tenants[1]
        session.execute(
            insert(Invoice), [{"customer_id": seeded.customers[1, "live"], "number": 3}]
        )
        assert (
            session.scalars(select(Invoice).where(Invoice.number == 3)).one().tenant_id
            == (seeded.tenants[1])
        )


def test_inserting_for_another_tenant_raises(session: Session, seeded: Seed) -> None:
    mine, theirs = seeded.tenants[0], seeded.tenants[1]
    with tenant_context(mine):
        session.add(Invoice(tenant_id=theirs, customer_id=seeded.customers[1, "live"], number=1))
        with pytest.raises(CrossTenantWriteError, match=str(theirs)):
            session.flush()
        session.rollback()
        with pytest.raises(CrossTenantWriteError):
            session.execute(
                insert(Invoice),
                [{"tenant_id": theirs, "customer_id": seeded.customers[1, "live"], "number": 1}],
            )
        session.rollback()
        with pytest.raises(CrossTenantWriteError):
            session.execute(
                text("INSERT INTO tags (tenant_id, label) VALUES (:t, 'x')"), {"t": theirs}
            )


def test_changing_a_row_of_another_tenant_raises(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[1]):
        theirs = session.get_one(Invoice, seeded.invoices[1, "live"])
    with tenant_context(seeded.tenants[0]):
        theirs.amount = 99
        with pytest.raises(CrossTenantWriteError, match="belongs to tenant"):
            session.flush()
        session.rollback()


def test_changing_an_expired_row_of_another_tenant_raises(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[1]):
        theirs = session.get_one(Invoice, seeded.invoices[1, "live"])
    session.expire(theirs)
    with tenant_context(seeded.tenants[0]):
        theirs.amount = 99
        with pytest.raises(CrossTenantWriteError, match="not visible"):
            session.flush()
        session.rollback()


def test_deleting_a_row_of_another_tenant_raises(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[1]):
        theirs = session.get_one(Invoice, seeded.invoices[1, "live"])
    with tenant_context(seeded.tenants[0]):
        session.delete(theirs)
        with pytest.raises(CrossTenantWriteError):
            session.flush()
        session.rollback()


def test_moving_a_row_to_another_tenant_raises(session: Session, seeded: Seed) -> None:
    mine, theirs = seeded.tenants[0], seeded.tenants[1]
    with tenant_context(mine):
        row = session.get_one(Invoice, seeded.invoices[0, "live"])
        row.tenant_id = theirs
        with pytest.raises(CrossTenantWriteError):
            session.flush()
        session.rollback()
        with pytest.raises(CrossTenantWriteError):
            session.execute(update(Invoice).values(tenant_id=theirs))
        session.rollback()
        with pytest.raises(CrossTenantWriteError):
            session.execute(text("UPDATE invoices SET tenant_id = :t"), {"t": theirs})


def test_switching_tenant_inside_one_transaction_switches_the_database_too(
    session: Session, seeded: Seed
) -> None:
    count = text("SELECT DISTINCT tenant_id FROM invoices")
    with tenant_context(seeded.tenants[0]):
        assert session.scalars(count).all() == [seeded.tenants[0]]
        with tenant_context(seeded.tenants[1]):
            assert session.scalars(count).all() == [seeded.tenants[1]]
            assert session.connection().exec_driver_sql(
                "SELECT DISTINCT tenant_id FROM invoices"
            ).scalars().all() == [seeded.tenants[1]]
        assert session.scalars(count).all() == [seeded.tenants[0]]
    assert session.scalars(count).all() == []


def test_a_rolled_back_savepoint_cannot_leave_an_old_tenant_behind(
    session: Session, seeded: Seed
) -> None:
    count = text("SELECT DISTINCT tenant_id FROM invoices")
    with tenant_context(seeded.tenants[0]):
        session.execute(count)
        savepoint = session.begin_nested()
        with tenant_context(seeded.tenants[1]):
            assert session.scalars(count).all() == [seeded.tenants[1]]
            savepoint.rollback()
            assert session.scalars(count).all() == [seeded.tenants[1]]
    assert session.scalars(count).all() == []


def test_core_connections_get_the_tenant_with_engine_hooks(
    hooked_runtime_engine: Engine, seeded: Seed
) -> None:
    with tenant_context(seeded.tenants[2]), hooked_runtime_engine.connect() as connection:
        tenants = connection.execute(text("SELECT DISTINCT tenant_id FROM customers")).scalars()
        assert list(tenants) == [seeded.tenants[2]]


def test_the_tenant_is_set_per_transaction_and_never_per_session(
    runtime_engine: Engine,
    runtime_sessions: sessionmaker[Session],
    seeded: Seed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    setting = text("SELECT current_setting('app.tenant_id', true)")
    event.listen(runtime_engine, "before_cursor_execute", record)
    try:
        with runtime_engine.connect() as connection, caplog.at_level("DEBUG", "pgkeel.session"):
            with tenant_context(seeded.tenants[0]), runtime_sessions(bind=connection) as session:
                assert session.execute(setting).scalar() == str(seeded.tenants[0])
                session.commit()
            assert connection.execute(setting).scalar() in {"", None}
    finally:
        event.remove(runtime_engine, "before_cursor_execute", record)
    assert not [s for s in statements if "set_config" in s or s.lstrip().upper().startswith("SET")]
    messages = [r.getMessage() for r in caplog.records if r.name == "pgkeel.session"]
    assert all("set_config('app.tenant_id', %s, true)" in m for m in messages), messages
    values = [m.rsplit(" -- ", 1)[1] for m in messages]
    changes = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
    assert changes == [repr(str(seeded.tenants[0])), "''"], messages  # '': the Core transaction
    starts = [m for m in messages if m.startswith("BEGIN")]  # each with BEGIN, in one round trip
    assert [m.rsplit(" -- ", 1)[1] for m in starts] == changes, messages


# -- ALL_TENANTS ------------------------------------------------------------------------------


def test_all_tenants_on_the_runtime_role_is_refused(session: Session) -> None:
    with tenant_context(ALL_TENANTS), pytest.raises(TenantNotSetError, match="BYPASSRLS"):
        session.scalars(select(Invoice)).all()


@pytest.fixture
def system_session(owner_engine: Engine) -> Iterator[Session]:
    """A session on a role that bypasses row-level security (here: the superuser)."""
    with create_sessionmaker(owner_engine)() as session:
        yield session
        session.rollback()


def test_all_tenants_sees_every_live_row_on_a_bypassing_role(
    system_session: Session, seeded: Seed
) -> None:
    with tenant_context(ALL_TENANTS):
        rows = system_session.scalars(select(Customer)).all()
    assert {row.tenant_id for row in rows} == set(seeded.tenants)
    assert all(row.deleted_at is None for row in rows)


def test_all_tenants_needs_an_explicit_tenant_for_new_rows(
    system_session: Session, seeded: Seed
) -> None:
    with tenant_context(ALL_TENANTS):
        system_session.add(Invoice(customer_id=seeded.customers[2, "live"], number=4))
        with pytest.raises(TenantNotSetError, match="set tenant_id explicitly"):
            system_session.flush()
        system_session.rollback()
        row = Invoice(
            tenant_id=seeded.tenants[2], customer_id=seeded.customers[2, "live"], number=4
        )
        system_session.add(row)
        system_session.flush()
