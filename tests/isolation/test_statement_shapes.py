"""Statement shapes whose rows no loader criterion of the plain form reaches, on every role.

``from_statement()`` of a ``union_all()``/``except_()`` (SQLAlchemy reads no options of the
SELECTs inside one), ORM ``update()``/``delete()`` run with ``dml_strategy="core_only"``
(compiled as Core: no loader criteria at all), ``from_statement()`` of an INSERT, UPDATE or
DELETE (the plain form's write checks), and ``contains_eager()`` building objects from a
``Table`` object. Inside ``tenant_context(t0)`` on the runtime role, a BYPASSRLS role and the
superuser, each must read, return and write only tenant 0's live rows, or be refused.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    bindparam,
    delete,
    except_,
    false,
    insert,
    select,
    union,
    union_all,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session, aliased, contains_eager

from pgkeel import CrossTenantWriteError, UnfilteredReadError, create_sessionmaker, tenant_context
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice

OWN, OTHER = 0, 1


def _own_live_invoices(seeded: Seed) -> set[uuid.UUID]:
    """Tenant 0's live invoices: the only ones a read of tenant 0 may return."""
    pointers = {seeded.pointers[OWN, n, state] for n in range(3) for state in ("live", "deleted")}
    return {seeded.invoices[OWN, "live"], *pointers}


def _peek(session: Session, sql: str, ident: uuid.UUID) -> Any:  # a value
    """One value of a row as this role sees it in this transaction (no ORM filter)."""
    return session.connection().exec_driver_sql(sql, {"i": ident}).scalar()


# -- from_statement() of a compound SELECT -------------------------------------------------------


def _compounds() -> dict[str, Any]:
    return {
        "union_all": union_all(select(Invoice), select(Invoice)),
        "union": union(select(Invoice), select(Invoice).where(Invoice.number >= 0)),
        "except_": except_(select(Invoice), select(Invoice).where(false())),
    }


@pytest.mark.parametrize("shape", list(_compounds()))
def test_from_statement_of_a_compound_select_is_filtered(
    acting: Session, seeded: Seed, shape: str
) -> None:
    rows = acting.scalars(select(Invoice).from_statement(_compounds()[shape])).all()
    assert {row.id for row in rows} == _own_live_invoices(seeded)


def test_from_statement_of_a_compound_select_with_include_deleted(
    acting: Session, seeded: Seed
) -> None:
    statement = select(Invoice).from_statement(union_all(select(Invoice), select(Invoice)))
    rows = acting.scalars(statement.execution_options(include_deleted=True)).all()
    assert {row.tenant_id for row in rows} == {seeded.tenants[OWN]}
    assert seeded.invoices[OWN, "deleted"] in {row.id for row in rows}


def test_from_statement_of_a_nested_union_is_filtered_unless_it_reads_a_table(
    acting: Session, seeded: Seed
) -> None:
    entities = union_all(union_all(select(Invoice), select(Invoice)), select(Invoice))
    rows = acting.scalars(select(Invoice).from_statement(entities)).all()
    assert {row.id for row in rows} == _own_live_invoices(seeded)
    tables = union_all(union_all(select(Invoice), select(Invoice.__table__)), select(Invoice))
    with pytest.raises(UnfilteredReadError, match=r"Table 'invoices'.*select\(Invoice\)"):
        acting.scalars(select(Invoice).from_statement(tables)).all()


@pytest.fixture(params=["runtime", "bypassrls"])
def async_url(
    request: pytest.FixtureRequest, isolation_db: URL, runtime_role: str, bypass_role: str
) -> URL:
    role = runtime_role if request.param == "runtime" else bypass_role
    return isolation_db.set(username=role, password=None)


def test_async_stream_of_a_compound_from_statement_is_filtered(
    async_url: URL, seeded: Seed
) -> None:
    async def main() -> set[uuid.UUID]:
        engine = create_async_engine(async_url)
        try:
            with tenant_context(seeded.tenants[OWN]):
                async with create_sessionmaker(engine)() as session:
                    compound = union_all(select(Invoice), select(Invoice))
                    found = await session.stream_scalars(select(Invoice).from_statement(compound))
                    return {row.id async for row in found}
        finally:
            await engine.dispose()

    assert asyncio.run(main()) == _own_live_invoices(seeded)


# -- ORM update() / delete() with dml_strategy="core_only" ---------------------------------------

TARGETS = [(OTHER, "live"), (OWN, "deleted")]
TARGET_IDS = ["other tenant's live row", "own deleted row"]
AMOUNT = "SELECT amount FROM invoices WHERE id = %(i)s"
DELETED_AT = "SELECT deleted_at FROM invoices WHERE id = %(i)s"


def _write_amount(acting: Session, idents: list[uuid.UUID], *, many: bool) -> None:
    """``update(Invoice)`` of the amount of ``idents`` with ``dml_strategy="core_only"``."""
    statement = (
        update(Invoice)
        .where(Invoice.id == bindparam("iid"))
        .values(amount=bindparam("amount"))
        .execution_options(dml_strategy="core_only", synchronize_session=False)
    )
    rows = [{"iid": ident, "amount": 919} for ident in idents]
    if many:
        acting.execute(statement, rows)
        return
    for row in rows:
        acting.execute(statement, row)


@pytest.mark.parametrize("many", [False, True], ids=["one parameter set", "executemany"])
@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_core_only_update_writes_only_own_live_rows(
    acting: Session, seeded: Seed, target: tuple[int, str], *, many: bool
) -> None:
    own, ident = seeded.invoices[OWN, "live"], seeded.invoices[target]
    _write_amount(acting, [own, ident], many=many)
    assert _peek(acting, AMOUNT, own) == 919
    assert _peek(acting, AMOUNT, ident) != 919  # None: row-level security hides the row


def test_core_only_delete_soft_deletes_only_own_live_rows(acting: Session, seeded: Seed) -> None:
    own, theirs = seeded.invoices[OWN, "live"], seeded.invoices[OTHER, "live"]
    statement = (
        delete(Invoice)
        .where(Invoice.id.in_([own, theirs]))
        .execution_options(dml_strategy="core_only", synchronize_session=False)
    )
    assert acting.execute(statement).rowcount == 1  # type: ignore[attr-defined]
    assert _peek(acting, DELETED_AT, own) is not None
    assert _peek(acting, DELETED_AT, theirs) is None


# -- from_statement() of an INSERT, UPDATE or DELETE -------------------------------------------


def test_from_statement_of_an_insert_is_checked_as_the_plain_insert(
    acting: Session, seeded: Seed
) -> None:
    own = insert(Invoice).values(customer_id=seeded.customers[OWN, "live"], number=31338)
    rows = acting.scalars(select(Invoice).from_statement(own.returning(Invoice))).all()
    assert [(row.tenant_id, row.number) for row in rows] == [(seeded.tenants[OWN], 31338)]
    theirs = (
        insert(Invoice)
        .values(tenant_id=seeded.tenants[OTHER], customer_id=seeded.customers[OTHER, "live"])
        .values(number=31337)
        .returning(Invoice)
    )
    with pytest.raises(CrossTenantWriteError, match="INSERT into Invoice"):
        acting.scalars(select(Invoice).from_statement(theirs)).all()


def test_from_statement_of_an_update_moving_a_row_is_refused(acting: Session, seeded: Seed) -> None:
    updated = (
        update(Invoice)
        .where(Invoice.id == seeded.invoices[OWN, "live"])
        .values(tenant_id=seeded.tenants[OTHER])
        .returning(Invoice)
    )
    with pytest.raises(CrossTenantWriteError, match="UPDATE of Invoice"):
        acting.scalars(select(Invoice).from_statement(updated)).all()


def test_from_statement_of_a_delete_soft_deletes_only_its_rows(
    acting: Session, seeded: Seed
) -> None:
    ident = seeded.invoices[OWN, "live"]
    deleted = delete(Invoice).where(Invoice.id == ident).returning(Invoice)
    rows = acting.scalars(select(Invoice).from_statement(deleted)).all()
    assert [row.id for row in rows] == [ident]
    assert _peek(acting, DELETED_AT, ident) is not None
    live = acting.scalars(select(Invoice.id)).all()
    assert set(live) == _own_live_invoices(seeded) - {ident}


def test_from_statement_of_an_update_from_another_tenants_rows_matches_none(
    acting: Session, seeded: Seed
) -> None:
    updated = (
        update(Invoice)
        .where(Invoice.customer_id == Customer.id, Customer.id == seeded.customers[OTHER, "live"])
        .values(amount=555)
        .returning(Invoice)
    )
    assert acting.scalars(select(Invoice).from_statement(updated)).all() == []


# -- contains_eager() --------------------------------------------------------------------------


def _table_sources() -> dict[str, tuple[Any, Any]]:
    """``select(Invoice)`` joining the customers as a ``Table`` (or alias of one), and its alias."""
    customers = Customer.__table__
    alias, subquery = customers.alias(), select(customers).subquery()
    return {
        "join of the Table": (select(Invoice).join(customers, _customer_of(customers)), None),
        "Table in the WHERE": (select(Invoice).where(_customer_of(customers)), None),
        "alias of the Table": (select(Invoice).join(alias, _customer_of(alias)), alias),
        "subquery of the Table": (select(Invoice).join(subquery, _customer_of(subquery)), subquery),
    }


def _customer_of(customers: Any) -> Any:  # a FROM object, a condition
    return Invoice.customer_id == customers.c.id


@pytest.mark.parametrize("shape", list(_table_sources()))
def test_contains_eager_from_a_table_is_refused_and_the_entity_filtered(
    acting: Session, seeded: Seed, shape: str
) -> None:
    joined, alias = _table_sources()[shape]
    statement = joined.options(contains_eager(Invoice.customer, alias=alias))
    with pytest.raises(UnfilteredReadError, match=r"Table 'customers'.*aliased\(Customer\)"):
        acting.scalars(statement).unique().all()
    invoices = acting.scalars(_entity_sources()[shape]).unique().all()  # the fix it names
    assert {invoice.customer.id for invoice in invoices} == {seeded.customers[OWN, "live"]}
    assert {invoice.id for invoice in invoices} <= _own_live_invoices(seeded)


def test_contains_eager_from_a_table_with_include_deleted(
    acting: Session, role_engine: Engine, runtime_engine: Engine, seeded: Seed
) -> None:
    customers = Customer.__table__
    statement = (
        select(Invoice)
        .join(customers, Invoice.customer_id == customers.c.id)
        .options(contains_eager(Invoice.customer))
        .execution_options(include_deleted=True)
    )
    if role_engine is runtime_engine:  # row-level security filters the Table's rows
        loaded = {row.customer.tenant_id for row in acting.scalars(statement).unique()}
        assert loaded == {seeded.tenants[OWN]}
    else:
        with pytest.raises(UnfilteredReadError, match="bypasses row-level security"):
            acting.scalars(statement).unique().all()


def _entity_sources() -> dict[str, Any]:
    """The same reads with the customers joined as the entity: the criteria reach them."""
    alias, subquery = aliased(Customer), select(Customer).subquery()
    return {
        "join of the Table": select(Invoice)
        .join(Customer, Invoice.customer_id == Customer.id)
        .options(contains_eager(Invoice.customer)),
        "Table in the WHERE": select(Invoice)
        .join(Invoice.customer)
        .options(contains_eager(Invoice.customer)),
        "alias of the Table": select(Invoice)
        .join(alias, Invoice.customer_id == alias.id)
        .options(contains_eager(Invoice.customer, alias=alias)),
        "subquery of the Table": select(Invoice)
        .join(subquery, _customer_of(subquery))
        .options(contains_eager(Invoice.customer, alias=subquery)),
    }
