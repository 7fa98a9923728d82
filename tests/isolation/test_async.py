"""The AsyncSession path: concurrent asyncio tasks, each in its own tenant, on real PostgreSQL.

``tenant_context`` is a ``ContextVar``: each task sees its own tenant, and SQLAlchemy's greenlet
bridge carries the task's context into the sync session hooks. Tasks here share fewer pooled
connections than there are tasks and yield between statements, so every connection serves
several tenants in turn, within and across transactions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pgkeel import (
    CrossTenantWriteError,
    TenantNotSetError,
    create_sessionmaker,
    install_session_hooks,
    tenant_context,
)
from pgkeel.session import PgkeelSession, install_engine_hooks
from tests.isolation.conftest import STATES, Seed
from tests.isolation.models import Customer, Invoice, Tag

T = TypeVar("T")
TASKS_PER_TENANT = 4
TRANSACTIONS_PER_TASK = 6
POOL_SIZE = 3
SETTING = text("SELECT current_setting('app.tenant_id', true)")


@pytest.fixture
def runtime_url(isolation_db: URL, runtime_role: str, seeded: Seed) -> URL:
    assert isolation_db.drivername == "postgresql+psycopg"  # psycopg 3 is async as well
    return isolation_db.set(username=runtime_role, password=None)


def run(url: URL, work: Callable[[AsyncEngine], Awaitable[T]], **engine_kw: Any) -> T:
    """Run ``work`` on a fresh async engine in a new event loop; dispose of the engine after."""

    async def main() -> T:
        engine = create_async_engine(url, **engine_kw)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_create_sessionmaker_gives_an_async_factory_with_the_hooks(runtime_url: URL) -> None:
    engine = create_async_engine(runtime_url)
    try:
        factory = create_sessionmaker(engine, expire_on_commit=False)
        assert isinstance(factory, async_sessionmaker)
        assert issubclass(factory.kw["sync_session_class"], PgkeelSession)
        assert factory.kw["expire_on_commit"] is False
    finally:
        asyncio.run(engine.dispose())


async def _tenant_task(
    factory: async_sessionmaker[AsyncSession], seed: Seed, n: int, mismatches: list[str]
) -> list[str]:
    """Transactions as tenant ``n``, yielding between statements; what each set in PostgreSQL."""
    tenant = seed.tenants[n]
    settings = []
    with tenant_context(tenant):
        for step in range(TRANSACTIONS_PER_TASK):
            async with factory() as session, session.begin():
                names = sorted(c.name for c in (await session.scalars(select(Customer))).all())
                await asyncio.sleep(0)
                raw = (await session.scalars(text("SELECT DISTINCT tenant_id FROM invoices"))).all()
                await asyncio.sleep(0)
                settings.append(await session.scalar(SETTING))
                own = (await session.get(Customer, seed.customers[n, "live"])) is not None
                other = seed.customers[(n + 1) % len(seed.tenants), "live"]
                leaked = await session.get(Customer, other)
            if names != [f"c{n}live"] or raw != [tenant] or not own or leaked is not None:
                mismatches.append(f"tenant {n} step {step}: {names} {raw} {own} {leaked}")
    return settings


def test_concurrent_tasks_each_see_only_their_own_live_rows(
    runtime_url: URL, seeded: Seed, caplog: pytest.LogCaptureFixture
) -> None:
    mismatches: list[str] = []

    async def work(engine: AsyncEngine) -> list[list[str]]:
        factory = create_sessionmaker(engine)
        tasks = [
            _tenant_task(factory, seeded, n, mismatches)
            for n in range(len(seeded.tenants))
            for _ in range(TASKS_PER_TENANT)
        ]
        return await asyncio.gather(*tasks)

    with caplog.at_level("DEBUG", "pgkeel.session"):
        settings = run(runtime_url, work, pool_size=POOL_SIZE, max_overflow=0)
    assert mismatches == []
    for n, task_settings in enumerate(settings):
        assert task_settings == [str(seeded.tenants[n // TASKS_PER_TENANT])] * len(task_settings)
    sent = Counter(r.getMessage().rsplit(" -- ", 1)[1] for r in caplog.records)
    per_tenant = TASKS_PER_TENANT * TRANSACTIONS_PER_TASK
    assert sent == {repr(str(tenant)): per_tenant for tenant in seeded.tenants}


def test_the_setting_ends_with_each_transaction(runtime_url: URL, seeded: Seed) -> None:
    async def work(engine: AsyncEngine) -> list[object]:
        factory = create_sessionmaker(engine)
        seen = []
        async with factory() as session:
            with tenant_context(seeded.tenants[0]):
                seen.append(await session.scalar(SETTING))
                await session.commit()
            seen.append(await session.scalar(SETTING))  # a new transaction, outside the context
            await session.rollback()
        async with engine.connect() as connection:  # the same pooled connection, no hooks
            seen.append(await connection.scalar(SETTING))
        return seen

    seen = run(runtime_url, work, pool_size=1, max_overflow=0)
    assert seen[0] == str(seeded.tenants[0])
    assert seen[1:] == ["", ""] or seen[1:] == ["", None]


def test_no_tenant_fails_closed(runtime_url: URL, seeded: Seed) -> None:
    async def work(engine: AsyncEngine) -> object:
        async with create_sessionmaker(engine)() as session:
            with pytest.raises(TenantNotSetError, match="tenant_context"):
                await session.scalars(select(Invoice))
            with pytest.raises(TenantNotSetError):
                await session.get(Invoice, seeded.invoices[0, "live"])
            return await session.scalar(text("SELECT count(*) FROM invoices"))

    assert run(runtime_url, work) == 0


def test_soft_deleted_rows_stay_hidden(runtime_url: URL, seeded: Seed) -> None:
    async def work(engine: AsyncEngine) -> tuple[list[str], list[str], list[str]]:
        factory = create_sessionmaker(engine)
        with tenant_context(seeded.tenants[1]):
            async with factory() as session:
                tags = (await session.scalars(select(Tag))).all()
                live = [t.label for t in tags]
                assert await session.get(Tag, seeded.tags[1, "deleted"]) is None
                every = select(Tag.label).execution_options(include_deleted=True)
                labels = sorted((await session.scalars(every)).all())
                await session.delete(tags[0])  # a soft delete: the row stays, marked
                await session.flush()
                after = list((await session.scalars(select(Tag.label))).all())
                marked = text("SELECT deleted_at IS NOT NULL FROM tags WHERE id = :id")
                assert await session.scalar(marked, {"id": tags[0].id}) is True
                await session.rollback()
        return live, labels, after

    live, every, after = run(runtime_url, work)
    assert live == ["tag live"]
    assert every == sorted(f"tag {state}" for state in STATES)
    assert after == []


def test_writes_get_the_task_tenant_and_cannot_cross(runtime_url: URL, seeded: Seed) -> None:
    mine, theirs = seeded.tenants[2], seeded.tenants[0]

    async def work(engine: AsyncEngine) -> uuid.UUID:
        factory = create_sessionmaker(engine, expire_on_commit=False)
        with tenant_context(mine):
            async with factory() as session:
                tag = Tag(label="async")
                session.add(tag)
                await session.flush()
                session.add(Tag(tenant_id=theirs, label="not mine"))
                with pytest.raises(CrossTenantWriteError):
                    await session.flush()
                await session.rollback()
                insert = text("INSERT INTO tags (tenant_id, label) VALUES (:t, 'raw')")
                with pytest.raises(CrossTenantWriteError):  # refused by row-level security
                    await session.execute(insert, {"t": theirs})
                await session.rollback()
        return tag.tenant_id

    assert run(runtime_url, work) == mine


def test_install_session_hooks_on_an_own_async_sessionmaker(runtime_url: URL, seeded: Seed) -> None:
    async def work(engine: AsyncEngine) -> list[uuid.UUID]:
        factory = install_session_hooks(async_sessionmaker(engine))
        with tenant_context(seeded.tenants[2]):
            async with factory() as session:
                return list((await session.scalars(select(Invoice.tenant_id).distinct())).all())

    assert run(runtime_url, work) == [seeded.tenants[2]]


def test_async_core_connections_get_the_tenant_with_engine_hooks(
    runtime_url: URL, seeded: Seed
) -> None:
    async def work(engine: AsyncEngine) -> list[list[uuid.UUID]]:
        assert install_engine_hooks(engine) is engine

        async def read(tenant: uuid.UUID) -> list[uuid.UUID]:
            with tenant_context(tenant):
                async with engine.connect() as connection:
                    await asyncio.sleep(0)
                    rows = await connection.scalars(text("SELECT DISTINCT tenant_id FROM tags"))
                    return list(rows.all())

        return await asyncio.gather(*(read(tenant) for tenant in seeded.tenants))

    assert run(runtime_url, work, pool_size=1, max_overflow=0) == [[t] for t in seeded.tenants]


def test_async_autocommit_without_a_tenant_clears_a_left_over_value(
    runtime_url: URL, seeded: Seed
) -> None:
    probe = text("SELECT current_setting('app.tenant_id', true), (SELECT count(*) FROM customers)")

    async def work(engine: AsyncEngine) -> list[Any]:
        async with engine.connect() as stray:
            await stray.exec_driver_sql(f"SET app.tenant_id = '{seeded.tenants[1]}'")
            await stray.commit()
        install_engine_hooks(engine)
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        async with autocommit.connect() as connection:
            first = (await connection.execute(probe)).one()
            second = (await connection.execute(probe)).one()
        return [tuple(first), tuple(second)]

    assert run(runtime_url, work, pool_size=1, max_overflow=0) == [("", 0), ("", 0)]
