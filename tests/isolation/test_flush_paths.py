"""Every row a flush writes obeys the tenant rules, not only the objects changed before it.

A one-to-many relationship without ``back_populates`` changes nothing on the child before the
flush: the unit of work sets (or clears) the child's foreign key during the flush. Such a child
is checked like a changed object, on every role: in memory (its ``tenant_id``), and on a role
that bypasses row-level security against its stored row. The legacy ``bulk_update_mappings``
never writes a soft-deleted row, as an ORM ``update()`` by primary key does not.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, make_transient_to_detached, relationship
from sqlalchemy.orm.exc import StaleDataError

from pgkeel import ALL_TENANTS, CrossTenantWriteError, hard_delete, tenant_context
from tests.isolation.conftest import Seed, stored_row
from tests.isolation.models import Customer, Invoice

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # overlaps Customer.invoices on purpose
    # an ordinary one-to-many, as many services write it: no back_populates
    Customer.plain_invoices = relationship(Invoice, overlaps="invoices,customer")  # type: ignore[attr-defined]


BYPASSING = pytest.mark.parametrize("role_engine", ["bypassrls", "superuser"], indirect=True)
"""The roles ``tenant_context(ALL_TENANTS)`` may read with (the runtime role may not)."""


def _customer_of(owner_engine: Engine, invoice: uuid.UUID) -> object:
    row = stored_row(owner_engine, "invoices", invoice)
    assert row is not None
    return row["customer_id"]


def _amount(owner_engine: Engine, invoice: uuid.UUID) -> object:
    row = stored_row(owner_engine, "invoices", invoice)
    assert row is not None
    return row["amount"]


def _own_customer(acting: Session, seeded: Seed) -> Customer:
    customer = acting.get(Customer, seeded.customers[0, "live"])
    assert customer is not None
    return customer


def test_forged_child_appended_to_a_collection_is_refused(
    acting: Session, seeded: Seed, owner_engine: Engine, role_engine: Engine, runtime_engine: Engine
) -> None:
    theirs = seeded.pointers[1, 1, "live"]
    before = _customer_of(owner_engine, theirs)
    forged = Invoice(id=theirs, tenant_id=seeded.tenants[0], customer_id=before, number=1)
    make_transient_to_detached(forged)
    customer = _own_customer(acting, seeded)
    customer.plain_invoices.append(forged)  # type: ignore[attr-defined]
    # row-level security: the UPDATE matches no row
    refusal = StaleDataError if role_engine is runtime_engine else CrossTenantWriteError
    with pytest.raises(refusal):
        acting.flush()
    acting.rollback()
    assert _customer_of(owner_engine, theirs) == before


def test_child_of_another_tenant_loaded_earlier_is_refused(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    theirs = seeded.pointers[1, 1, "live"]
    before = _customer_of(owner_engine, theirs)
    with tenant_context(seeded.tenants[1]):
        invoice = acting.scalars(select(Invoice).where(Invoice.id == theirs)).one()
    customer = _own_customer(acting, seeded)
    customer.plain_invoices.append(invoice)  # type: ignore[attr-defined]
    with pytest.raises(CrossTenantWriteError, match=f"belongs to tenant {seeded.tenants[1]}"):
        acting.flush()
    acting.rollback()
    assert _customer_of(owner_engine, theirs) == before


def test_child_of_another_tenant_in_a_new_parent_is_refused(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    theirs = seeded.pointers[1, 1, "live"]
    before = _customer_of(owner_engine, theirs)
    with tenant_context(seeded.tenants[1]):
        invoice = acting.scalars(select(Invoice).where(Invoice.id == theirs)).one()
    acting.add(Customer(name="new", email="flush-paths@0.test", plain_invoices=[invoice]))
    with pytest.raises(CrossTenantWriteError, match="Refusing to update Invoice"):
        acting.flush()
    acting.rollback()
    assert _customer_of(owner_engine, theirs) == before


@BYPASSING
def test_child_of_another_tenant_removed_from_a_collection_is_refused(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    """A collection loaded under ALL_TENANTS holds other tenants' children; removing one
    clears its foreign key."""
    theirs = seeded.invoices[1, "live"]
    with tenant_context(ALL_TENANTS):
        customer = _own_customer(acting, seeded)
        children = customer.plain_invoices  # type: ignore[attr-defined]
        invoice = next(child for child in children if child.id == theirs)
    children.remove(invoice)
    with pytest.raises(CrossTenantWriteError, match="Refusing to update Invoice"):
        acting.flush()
    acting.rollback()
    assert _customer_of(owner_engine, theirs) == seeded.customers[0, "live"]


@BYPASSING
def test_children_cleared_by_a_hard_delete_are_checked_as_they_are_written(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    """Deleting a parent clears its loaded children's foreign key during the flush: the last
    guard (a mapper event on every tenant model) checks rows no collection change named."""
    theirs = seeded.invoices[1, "live"]
    with tenant_context(ALL_TENANTS):
        customer = _own_customer(acting, seeded)
        assert theirs in {child.id for child in customer.plain_invoices}  # type: ignore[attr-defined]
    hard_delete(acting, customer)
    with pytest.raises(CrossTenantWriteError, match="Refusing to update Invoice"):
        acting.flush()
    acting.rollback()
    assert _customer_of(owner_engine, theirs) == seeded.customers[0, "live"]


def test_own_children_moved_by_a_collection_pass(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    mine = [seeded.pointers[0, 1, "live"], seeded.pointers[0, 2, "live"]]
    invoices = acting.scalars(select(Invoice).where(Invoice.id.in_(mine))).all()
    customer = _own_customer(acting, seeded)
    customer.plain_invoices.extend(invoices)  # type: ignore[attr-defined]
    acting.flush()
    stored = acting.scalars(select(Invoice.customer_id).where(Invoice.id.in_(mine))).all()
    assert stored == [seeded.customers[0, "live"]] * 2


@pytest.fixture
def selects(role_engine: Engine) -> Iterator[list[str]]:
    """The SELECT statements sent on ``role_engine`` while the test runs."""
    sent: list[str] = []

    def record(*args: object) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append(statement)

    event.listen(role_engine, "before_cursor_execute", record)
    yield sent
    event.remove(role_engine, "before_cursor_execute", record)


def test_collection_children_cost_one_query_per_flush(
    acting: Session,
    seeded: Seed,
    selects: list[str],
    role_engine: Engine,
    runtime_engine: Engine,
) -> None:
    """One query checks every child on a role that bypasses row-level security; none otherwise."""
    mine = [seeded.pointers[0, 1, "live"], seeded.pointers[0, 2, "live"]]
    invoices = acting.scalars(select(Invoice).where(Invoice.id.in_(mine))).all()
    customer = _own_customer(acting, seeded)
    customer.plain_invoices.extend(invoices)  # type: ignore[attr-defined]
    selects.clear()
    acting.flush()
    assert len(selects) == (0 if role_engine is runtime_engine else 1), selects


def test_bulk_update_mappings_refuse_a_soft_deleted_row(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    deleted, live = seeded.invoices[0, "deleted"], seeded.invoices[0, "live"]
    before = {ident: _amount(owner_engine, ident) for ident in (deleted, live)}
    rows = [{"id": live, "amount": 777}, {"id": deleted, "amount": 777}]
    with pytest.raises(
        StaleDataError, match=f"id {deleted} are soft-deleted.*include_deleted=True"
    ):
        acting.bulk_update_mappings(Invoice, rows)  # type: ignore[arg-type]
    acting.rollback()
    assert {ident: _amount(owner_engine, ident) for ident in (deleted, live)} == before


@BYPASSING
def test_bulk_update_mappings_refuse_a_soft_deleted_row_under_all_tenants(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    deleted = seeded.invoices[1, "deleted"]
    before = _amount(owner_engine, deleted)
    with tenant_context(ALL_TENANTS), pytest.raises(StaleDataError, match="soft-deleted"):
        acting.bulk_update_mappings(Invoice, [{"id": deleted, "amount": 777}])  # type: ignore[arg-type]
    acting.rollback()
    assert _amount(owner_engine, deleted) == before


def test_bulk_save_objects_of_an_object_loaded_as_deleted_writes_it(
    acting: Session, seeded: Seed
) -> None:
    """An object loaded with ``include_deleted=True`` is written on purpose, as a flush does."""
    deleted = seeded.invoices[0, "deleted"]
    query = select(Invoice).where(Invoice.id == deleted).execution_options(include_deleted=True)
    invoice = acting.scalars(query).one()
    invoice.amount = 778
    acting.bulk_save_objects([invoice])
    stored = acting.scalars(query.with_only_columns(Invoice.amount)).one()
    assert stored == 778
