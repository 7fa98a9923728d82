"""Tenant isolation behind a real PgBouncer in transaction-pooling mode.

Eight client connections share two server connections, so consecutive transactions of one client
land on different server connections and each server connection serves every tenant in turn.
pgkeel's ``set_config(..., true)`` per transaction must keep every transaction on its own tenant;
a session-level setting, shown first, leaks to whoever gets the server connection next.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from pgkeel import create_sessionmaker, tenant_context
from pgkeel.testing.pgbouncer import CONNECT_ARGS, PgBouncer
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice

pytestmark = pytest.mark.pgbouncer

THREADS = 8
TRANSACTIONS_PER_THREAD = 150
SERVER_CONNECTIONS = 2


@pytest.fixture(scope="module")
def bouncer(
    pgbouncer_factory: Callable[..., PgBouncer], isolation_db: URL, runtime_role: str
) -> PgBouncer:
    return pgbouncer_factory(isolation_db, users=[runtime_role], pool_size=SERVER_CONNECTIONS)


@pytest.fixture(scope="module")
def pooled_engine(bouncer: PgBouncer, isolation_db: URL, runtime_role: str) -> Iterator[Engine]:
    url = bouncer.url_for(isolation_db.database or "", user=runtime_role)
    engine = create_engine(url, connect_args=CONNECT_ARGS, pool_size=THREADS, max_overflow=0)
    yield engine
    engine.dispose()


def test_a_session_level_setting_leaks_through_transaction_pooling(
    pgbouncer_factory: Callable[..., PgBouncer], isolation_db: URL, runtime_role: str, seeded: Seed
) -> None:
    """The failure pgkeel avoids: ``set_config(..., false)`` outlives its client's transaction."""
    single = pgbouncer_factory(isolation_db, users=[runtime_role], pool_size=1)
    url = single.url_for(isolation_db.database or "", user=runtime_role)
    engine = create_engine(url, connect_args=CONNECT_ARGS, pool_size=2)
    try:
        with engine.connect() as first, engine.connect() as second:
            first.execute(
                text("SELECT set_config('app.tenant_id', :t, false)"),
                {"t": str(seeded.tenants[1])},
            )
            first.commit()
            leaked = second.execute(text("SELECT DISTINCT tenant_id FROM invoices")).scalars()
            assert list(leaked) == [seeded.tenants[1]], "expected the session-level value to leak"
            second.commit()
            with tenant_context(seeded.tenants[2]), create_sessionmaker(engine)() as session:
                seen = session.execute(text("SELECT DISTINCT tenant_id FROM invoices")).scalars()
                assert list(seen) == [seeded.tenants[2]]
    finally:
        engine.dispose()
        single.stop()


def _worker(
    sessions: sessionmaker[Session],
    seed: Seed,
    number: int,
    mismatches: list[str],
    backends: Counter[tuple[int, int]],
) -> None:
    for step in range(TRANSACTIONS_PER_THREAD):
        if step % 10 == 9:
            with sessions() as session:
                count = session.execute(text("SELECT count(*) FROM invoices")).scalar()
                if count != 0:
                    mismatches.append(f"thread {number}: {count} rows without a tenant")
            continue
        tenant = seed.tenants[(number + step) % len(seed.tenants)]
        with tenant_context(tenant), sessions() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            backends[id(session.connection().connection.dbapi_connection), pid] += 1
            customers = session.scalars(select(Customer)).all()
            raw = session.execute(text("SELECT tenant_id FROM invoices")).scalars().all()
            setting = session.execute(text("SELECT current_setting('app.tenant_id')")).scalar()
            seen = {c.tenant_id for c in customers} | set(raw) | {uuid.UUID(str(setting))}
            if seen != {tenant}:
                mismatches.append(f"thread {number} as {tenant}: saw {seen}")
            session.add(Invoice(customer_id=seed.customers[0, "live"], number=step))
            session.rollback()


def test_interleaved_transactions_each_see_only_their_tenant(
    pooled_engine: Engine, seeded: Seed
) -> None:
    sessions = create_sessionmaker(pooled_engine)
    mismatches: list[str] = []
    backends: Counter[tuple[int, int]] = Counter()
    threads = [
        threading.Thread(target=_worker, args=(sessions, seeded, n, mismatches, backends))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []
    transactions = THREADS * TRANSACTIONS_PER_THREAD
    assert transactions >= 1000
    server_pids = {pid for _client, pid in backends}
    clients = {client for client, _pid in backends}
    moved = [c for c in clients if len({p for cl, p in backends if cl == c}) > 1]
    assert len(server_pids) <= SERVER_CONNECTIONS < len(clients)
    assert moved, "no client changed server connection: transaction pooling was not exercised"
