"""A soft-deleted row leaves the collections already loaded in the session.

Reads filter deleted rows, but a collection loaded before the delete is not read again: an eager
load of the same parent keeps the collection it already holds. So a soft delete, by flush or by
bulk ``delete()`` or ``obj.soft_delete()``, must not leave the row in a collection that a later
access returns.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload, selectinload

from pgkeel import tenant_context
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice


def _customer_with_invoices(session: Session, ident: uuid.UUID, eager: object) -> Customer:
    statement = select(Customer).where(Customer.id == ident).options(eager(Customer.invoices))  # type: ignore[operator]
    return session.scalars(statement).unique().one()


def _own_live_invoice(customer: Customer, tenant: uuid.UUID) -> Invoice:
    return next(i for i in customer.invoices if i.tenant_id == tenant)


@pytest.mark.parametrize("eager", [joinedload, selectinload], ids=["joinedload", "selectinload"])
@pytest.mark.parametrize("how", ["bulk delete()", "session.delete()", "obj.soft_delete()"])
def test_a_soft_deleted_child_leaves_its_loaded_collection(
    session: Session, seeded: Seed, eager: object, how: str
) -> None:
    tenant = seeded.tenants[0]
    with tenant_context(tenant):
        customer = _customer_with_invoices(session, seeded.customers[0, "live"], eager)
        invoice = _own_live_invoice(customer, tenant)
        if how == "bulk delete()":
            session.execute(delete(Invoice).where(Invoice.id == invoice.id))
        elif how == "session.delete()":
            session.delete(invoice)
            session.flush()
        else:
            invoice.soft_delete()
            session.flush()
        again = _customer_with_invoices(session, seeded.customers[0, "live"], eager)
        assert again is customer
        assert invoice.id not in {i.id for i in customer.invoices}
        assert all(i.deleted_at is None for i in customer.invoices)
        assert customer.invoices, "the other live invoices stay"


def test_a_soft_deleted_parent_is_not_reached_from_its_loaded_child(
    session: Session, seeded: Seed
) -> None:
    """The many-to-one side: a child loaded with its parent no longer returns the deleted parent."""
    tenant = seeded.tenants[0]
    with tenant_context(tenant):
        invoice = session.get_one(Invoice, seeded.invoices[0, "live"])
        assert invoice.customer.id == seeded.customers[0, "live"]
        session.execute(delete(Customer).where(Customer.id == seeded.customers[0, "live"]))
        assert invoice.customer is None or invoice.customer.deleted_at is None


def test_a_parent_soft_deleted_by_its_method_is_not_reached_from_its_loaded_child(
    session: Session, seeded: Seed
) -> None:
    tenant = seeded.tenants[0]
    with tenant_context(tenant):
        invoice = session.get_one(Invoice, seeded.invoices[0, "live"])
        customer = invoice.customer
        customer.soft_delete()
        session.flush()
        again = session.scalars(select(Invoice).where(Invoice.id == invoice.id)).one()
        assert again is invoice
        assert invoice.customer is None
