"""The rows an ORM write reads besides its own: UPDATE ... FROM, ON CONFLICT, INSERT ... SELECT.

SQLAlchemy applies loader criteria to the target of a bulk UPDATE or DELETE only; an upsert's
conflict update writes a row found by a unique index; ``from_select`` may read a ``Table``
object, which loader criteria never reach. On every role (runtime, BYPASSRLS, superuser) inside
``tenant_context(t0)`` these must read, return, copy and touch only tenant 0's live rows.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session, aliased

from pgkeel import CrossTenantWriteError, create_sessionmaker, tenant_context
from tests.isolation.conftest import Seed, stored_row
from tests.isolation.models import Customer, Invoice, Tag

SOURCES = ["entity", "aliased", "Table"]


def invoices_as(source: str) -> Any:  # an entity, an alias or a Table
    """The invoices, read through the mapped class, an ``aliased()`` entity or the Table."""
    return {"entity": Invoice, "aliased": aliased(Invoice), "Table": Invoice.__table__.c}[source]


# -- UPDATE ... FROM / DELETE ... USING --------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_update_from_returns_no_row_of_another_tenant(
    acting: Session, seeded: Seed, source: str
) -> None:
    invoices = invoices_as(source)
    statement = (
        update(Customer)
        .where(Customer.id == invoices.customer_id, invoices.tenant_id == seeded.tenants[1])
        .values(name=Customer.name)
        .returning(invoices.tenant_id, invoices.number)
        .execution_options(synchronize_session=False)
    )
    assert acting.execute(statement).all() == []


@pytest.mark.parametrize("source", SOURCES)
def test_update_from_copying_tenant_id_keeps_the_customer_in_its_tenant(
    acting: Session, seeded: Seed, owner_engine: Engine, source: str
) -> None:
    invoices = invoices_as(source)
    pointer = seeded.pointers[1, 0, "live"]  # tenant 1's invoice of tenant 0's customer
    statement = (
        update(Customer)
        .where(Customer.id == invoices.customer_id, invoices.id == pointer)
        .values(tenant_id=invoices.tenant_id)
        .execution_options(synchronize_session=False)
    )
    assert acting.execute(statement).rowcount == 0  # type: ignore[attr-defined]
    acting.flush()
    stored = stored_row(owner_engine, "customers", seeded.customers[0, "live"])
    assert stored is not None
    assert stored["tenant_id"] == seeded.tenants[0]


def test_update_from_of_own_live_rows_still_updates(acting: Session, seeded: Seed) -> None:
    statement = (
        update(Customer)
        .where(Customer.id == Invoice.customer_id, Invoice.id == seeded.invoices[0, "live"])
        .values(name=Customer.name)
        .returning(Invoice.number)
        .execution_options(synchronize_session=False)
    )
    assert acting.execute(statement).scalars().all() == [0]


@pytest.mark.parametrize("source", [*SOURCES, "subquery"])
@pytest.mark.parametrize("verb", ["update", "soft delete", "hard delete"])
def test_a_write_matches_nothing_through_a_soft_deleted_row(
    acting: Session, seeded: Seed, source: str, verb: str
) -> None:
    deleted = seeded.invoices[0, "deleted"]  # tenant 0's own, soft-deleted
    if source == "subquery":
        criteria = [Customer.id.in_(select(Invoice.customer_id).where(Invoice.id == deleted))]
    else:
        invoices = invoices_as(source)
        criteria = [Customer.id == invoices.customer_id, invoices.id == deleted]
    statement: Any = {
        "update": update(Customer).where(*criteria).values(name="through a deleted invoice"),
        "soft delete": delete(Customer).where(*criteria),
        "hard delete": delete(Customer).where(*criteria).execution_options(hard_delete=True),
    }[verb]
    count = acting.execute(statement.execution_options(synchronize_session=False)).rowcount
    assert count == 0


@pytest.mark.parametrize("source", SOURCES)
def test_delete_using_another_tenants_rows_deletes_nothing(
    acting: Session, seeded: Seed, owner_engine: Engine, source: str
) -> None:
    invoices = invoices_as(source)
    statement = (
        delete(Customer)
        .where(Customer.id == invoices.customer_id, invoices.tenant_id == seeded.tenants[1])
        .execution_options(synchronize_session=False)
    )
    assert acting.execute(statement).rowcount == 0  # type: ignore[attr-defined]
    acting.flush()
    stored = stored_row(owner_engine, "customers", seeded.customers[0, "live"])
    assert stored is not None
    assert stored["deleted_at"] is None


def test_include_deleted_reaches_the_rows_of_the_from_clause(acting: Session, seeded: Seed) -> None:
    statement = (
        update(Customer)
        .where(Customer.id == Invoice.customer_id, Invoice.id == seeded.invoices[0, "deleted"])
        .values(name=Customer.name)
        .execution_options(synchronize_session=False, include_deleted=True)
    )
    assert acting.execute(statement).rowcount == 1  # type: ignore[attr-defined]


# -- INSERT ... ON CONFLICT DO UPDATE ----------------------------------------------------------


def upsert(ident: uuid.UUID, seeded: Seed, **set_: object) -> Any:
    return (
        pg_insert(Invoice)
        .values(id=ident, customer_id=seeded.customers[0, "live"], number=5)
        .on_conflict_do_update(index_elements=[Invoice.id], set_=set_)
    )


def test_upsert_conflicting_with_another_tenants_row_is_refused(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    theirs = seeded.invoices[1, "live"]
    with pytest.raises(CrossTenantWriteError, match="belongs to another tenant"):
        acting.execute(upsert(theirs, seeded, amount=4242))
    acting.rollback()
    stored = stored_row(owner_engine, "invoices", theirs)
    assert stored is not None
    assert (stored["tenant_id"], stored["amount"]) == (seeded.tenants[1], 0)


def test_upsert_setting_another_tenant_is_refused(acting: Session, seeded: Seed) -> None:
    own = seeded.invoices[0, "live"]
    with pytest.raises(CrossTenantWriteError, match="sets tenant_id to"):
        acting.execute(upsert(own, seeded, tenant_id=seeded.tenants[1]))


def test_upsert_of_an_own_row_updates_it(acting: Session, seeded: Seed) -> None:
    own = seeded.invoices[0, "live"]
    statement = upsert(own, seeded, amount=4242, tenant_id=pg_insert(Invoice).excluded.tenant_id)
    assert acting.execute(statement.returning(Invoice.amount)).scalars().all() == [4242]


def test_upsert_leaves_a_soft_deleted_row_alone(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    deleted = seeded.invoices[0, "deleted"]
    statement = upsert(deleted, seeded, amount=4242).returning(Invoice.amount)
    assert acting.execute(statement).scalars().all() == []
    with_deleted = statement.execution_options(include_deleted=True)
    assert acting.execute(with_deleted).scalars().all() == [4242]
    acting.rollback()
    stored = stored_row(owner_engine, "invoices", deleted)
    assert stored is not None
    assert stored["amount"] == 0


# -- INSERT ... FROM SELECT --------------------------------------------------------------------


def test_insert_from_select_of_a_tables_tenant_id_is_refused(acting: Session) -> None:
    invoices = Invoice.__table__
    source = select(invoices.c.tenant_id, func.concat("copied-", invoices.c.id))
    statement = insert(Tag).from_select(["tenant_id", "label"], source)
    with pytest.raises(CrossTenantWriteError, match=r"invoices\.tenant_id of a Table object"):
        acting.execute(statement)


def test_insert_from_select_of_a_table_filtered_to_the_tenant_passes(
    acting: Session, seeded: Seed
) -> None:
    invoices = Invoice.__table__
    source = select(invoices.c.tenant_id, func.concat("copied-", invoices.c.id)).where(
        invoices.c.tenant_id == seeded.tenants[0], invoices.c.deleted_at.is_(None)
    )
    statement = insert(Tag).from_select(["tenant_id", "label"], source).returning(Tag.tenant_id)
    assert set(acting.execute(statement).scalars()) == {seeded.tenants[0]}


@pytest.mark.parametrize("source", ["entity", "aliased"])
def test_insert_from_select_of_an_entitys_tenant_id_copies_own_rows(
    acting: Session, seeded: Seed, source: str
) -> None:
    invoices = invoices_as(source)
    query = select(invoices.tenant_id, func.concat("copied-", invoices.id))
    statement = insert(Tag).from_select(["tenant_id", "label"], query).returning(Tag.tenant_id)
    assert set(acting.execute(statement).scalars()) == {seeded.tenants[0]}


# -- AsyncSession ------------------------------------------------------------------------------


def test_an_async_session_on_a_bypassing_role_is_guarded_the_same_way(
    isolation_db: URL, bypass_role: str, seeded: Seed
) -> None:
    url = isolation_db.set(username=bypass_role, password=None)
    returning_theirs = (
        update(Customer)
        .where(Customer.id == Invoice.customer_id, Invoice.tenant_id == seeded.tenants[1])
        .values(name=Customer.name)
        .returning(Invoice.number)
        .execution_options(synchronize_session=False)
    )

    async def work() -> list[int]:
        engine = create_async_engine(url)
        try:
            with tenant_context(seeded.tenants[0]):
                async with create_sessionmaker(engine)() as session:
                    with pytest.raises(CrossTenantWriteError):
                        await session.execute(upsert(seeded.invoices[1, "live"], seeded, amount=1))
                    await session.rollback()
                    returned = (await session.execute(returning_theirs)).scalars().all()
                    await session.rollback()
                    return list(returned)
        finally:
            await engine.dispose()

    assert asyncio.run(work()) == []
