"""One compiled SQL per statement shape: reused for every tenant, never a tenant's rows for another.

The session hooks add the tenant and ``deleted_at`` criteria so that SQLAlchemy's compiled
cache keeps one SQL per statement shape, the tenant going in as a parameter of each execution.
These tests run the same statements for tenant A, then B, then A again, with and without
``include_deleted``, on a role that bypasses row-level security (the ORM filters alone decide
what comes back), and check both that the compiled SQL was reused and that each execution got
exactly its tenant's rows, as the superuser reads them.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import URL
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from pgkeel import ALL_TENANTS, TenantNotSetError, create_sessionmaker, tenant_context
from pgkeel.session import _reads
from pgkeel.session import _sqlalchemy_private as private
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice, Tenant

CacheLog = list[tuple[str, str]]


@pytest.fixture
def engine(isolation_db: URL, bypass_role: str, seeded: Seed) -> Iterator[Engine]:
    """An engine of its own (its own compiled cache) on the BYPASSRLS role."""
    engine = create_engine(isolation_db.set(username=bypass_role, password=None))
    yield engine
    engine.dispose()


@pytest.fixture
def cache_log(engine: Engine) -> CacheLog:
    """(SQL, cache outcome) of every compiled statement the engine runs."""
    log: CacheLog = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(*args: object) -> None:
        context = args[4]
        if isinstance(context, DefaultExecutionContext) and context.compiled is not None:
            log.append((str(context.compiled), context.cache_hit.name))

    return log


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return create_sessionmaker(engine)


def _truth(owner_engine: Engine, tenant: uuid.UUID, customer: uuid.UUID, *, deleted: bool) -> set:
    """The invoice ids of ``tenant`` for ``customer``, as the superuser reads them."""
    live = "" if deleted else " AND deleted_at IS NULL"
    query = f"SELECT id FROM invoices WHERE tenant_id = :t AND customer_id = :c{live}"
    with owner_engine.connect() as connection:
        return set(connection.execute(text(query), {"t": tenant, "c": customer}).scalars())


def _invoice_reads(cache_log: CacheLog) -> list[str]:
    return [hit for sql, hit in cache_log if sql.lstrip().startswith("SELECT invoices.")]


def test_one_compiled_select_serves_each_tenant_its_own_rows(
    sessions: sessionmaker[Session], owner_engine: Engine, seeded: Seed, cache_log: CacheLog
) -> None:
    customer = seeded.customers[0, "live"]
    runs = [(0, False), (1, False), (0, False), (1, True), (2, True), (0, True), (2, False)]
    for n, deleted in runs:
        tenant = seeded.tenants[n]
        statement = select(Invoice).where(Invoice.customer_id == customer)
        statement = statement.execution_options(include_deleted=deleted)
        with tenant_context(tenant), sessions() as session:
            got = {invoice.id for invoice in session.scalars(statement)}
        expected = _truth(owner_engine, tenant, customer, deleted=deleted)
        assert expected, "the seed gives every tenant invoices of this customer"
        assert got == expected, f"tenant {n}, include_deleted={deleted}"
    # one compile with the filter, one without it (include_deleted), every other run reused them
    assert _invoice_reads(cache_log) == [
        "CACHE_MISS", "CACHE_HIT", "CACHE_HIT", "CACHE_MISS", "CACHE_HIT", "CACHE_HIT", "CACHE_HIT"
    ]  # fmt: skip


def test_eager_loads_reuse_their_sql_and_keep_to_the_tenant(
    sessions: sessionmaker[Session], owner_engine: Engine, seeded: Seed, cache_log: CacheLog
) -> None:
    customer = seeded.customers[0, "live"]
    for loader in (joinedload, selectinload):
        for n in (0, 1, 2, 1):
            tenant = seeded.tenants[n]
            statement = select(Customer).where(Customer.id == customer)
            with tenant_context(tenant), sessions() as session:
                found = session.scalars(statement.options(loader(Customer.invoices))).unique()
                loaded = [{i.id for i in c.invoices} for c in found]
            expected = _truth(owner_engine, tenant, customer, deleted=False)
            # the customer belongs to tenant 0: other tenants do not see it at all
            assert loaded == ([expected] if n == 0 else []), f"{loader.__name__}, tenant {n}"
    assert "CACHE_HIT" in [hit for _sql, hit in cache_log]


def test_a_lazy_load_keeps_the_tenant_of_the_query_that_loaded_the_object(
    sessions: sessionmaker[Session], owner_engine: Engine, seeded: Seed
) -> None:
    customer_id = seeded.customers[0, "live"]
    own = _truth(owner_engine, seeded.tenants[0], customer_id, deleted=False)
    later_contexts = ((seeded.tenants[0], own), (seeded.tenants[1], set()), (ALL_TENANTS, own))
    for later, expected in later_contexts:
        with sessions() as session:
            with tenant_context(seeded.tenants[0]):
                customer = session.scalars(select(Customer).where(Customer.id == customer_id)).one()
            with tenant_context(later):
                assert {invoice.id for invoice in customer.invoices} == expected, later


def test_without_a_tenant_every_run_of_a_shape_is_refused(
    sessions: sessionmaker[Session], seeded: Seed
) -> None:
    """The refusal is decided once per statement shape and given on every run, in any order."""
    customer = seeded.customers[0, "live"]
    statement = select(Invoice).where(Invoice.customer_id == customer)
    with sessions() as session:
        with tenant_context(seeded.tenants[0]):
            assert session.scalars(statement).all()
        for _ in range(3):
            with pytest.raises(TenantNotSetError):
                session.scalars(select(Invoice).where(Invoice.customer_id == customer)).all()
            with pytest.raises(TenantNotSetError):
                session.scalars(select(Tenant).options(joinedload(Tenant.customers))).all()
            assert session.scalars(select(Tenant).where(Tenant.id == seeded.tenants[0])).all()


def test_a_statement_built_once_serves_each_tenant_its_own_rows_and_lazy_loads(
    sessions: sessionmaker[Session], owner_engine: Engine, seeded: Seed, cache_log: CacheLog
) -> None:
    """The filtered copy pgkeel keeps per statement carries each run's own tenant to lazy loads."""
    customer_id = seeded.customers[0, "live"]
    customers = select(Customer).where(Customer.id == customer_id)
    invoices = select(Invoice).where(Invoice.customer_id == customer_id)
    for n in (0, 1, 2, 0, 1):
        tenant = seeded.tenants[n]
        with tenant_context(tenant), sessions() as session:
            got = {invoice.id for invoice in session.scalars(invoices)}
            found = session.scalars(customers).all()
        assert got == _truth(owner_engine, tenant, customer_id, deleted=False), f"tenant {n}"
        assert len(found) == (1 if n == 0 else 0), f"tenant {n}"
    own = _truth(owner_engine, seeded.tenants[0], customer_id, deleted=False)
    for later, expected in ((seeded.tenants[1], set()), (ALL_TENANTS, own)):
        with sessions() as session:
            with tenant_context(seeded.tenants[0]):
                customer = session.scalars(customers).one()
            with tenant_context(later):
                assert {invoice.id for invoice in customer.invoices} == expected, later
    with sessions() as session:
        with tenant_context(ALL_TENANTS):
            everyone = {invoice.id for invoice in session.scalars(invoices)}
        with pytest.raises(TenantNotSetError):
            session.scalars(invoices).all()
    assert everyone == {
        *_truth(owner_engine, seeded.tenants[0], customer_id, deleted=False),
        *_truth(owner_engine, seeded.tenants[1], customer_id, deleted=False),
        *_truth(owner_engine, seeded.tenants[2], customer_id, deleted=False),
    }
    assert _invoice_reads(cache_log)[:5] == ["CACHE_MISS", *["CACHE_HIT"] * 4]


def test_the_tenant_carried_to_lazy_loads_leaves_the_cache_key_as_it_was() -> None:
    """The copy that takes its statement's key over has the key a full walk would give it."""
    filtered = select(Invoice).options(_reads._PARAMETER_TENANT_ROWS, _reads._LIVE_ONLY)
    tenant = uuid.uuid4()
    reused = private.with_uncached_option(filtered, _reads._loaded_for(tenant))
    walked = filtered.options(_reads._loaded_for(tenant))
    reused_key, walked_key = reused._generate_cache_key(), walked._generate_cache_key()
    assert reused_key is not None
    assert walked_key is not None
    assert reused_key.key == walked_key.key
    assert reused_key.key != select(Invoice)._generate_cache_key().key  # type: ignore[union-attr]
    assert private.statement_options(reused)[-1] is _reads._loaded_for(tenant)


def test_statements_built_per_call_are_not_kept(
    sessions: sessionmaker[Session], seeded: Seed
) -> None:
    """pgkeel keeps its filtered copies only as long as the caller keeps the statement."""
    gc.collect()
    kept_before = len(_reads._FILTERED_SELECTS)
    with tenant_context(seeded.tenants[0]), sessions() as session:
        for _ in range(50):
            session.scalars(select(Invoice).where(Invoice.id == uuid.uuid4())).all()
    gc.collect()
    assert len(_reads._FILTERED_SELECTS) <= kept_before + 1
