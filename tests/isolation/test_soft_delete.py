"""Soft delete: delete marks rows, hard_delete removes them, uniques hold among live rows only."""

from __future__ import annotations

import uuid
from typing import ClassVar

import pytest
from sqlalchemy import (
    Engine,
    Index,
    MetaData,
    UniqueConstraint,
    delete,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pgkeel import SoftDeleteMixin, TenantMixin, hard_delete, tenant_context
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import UUIDPrimaryKeyMixin
from pgkeel.naming import allow
from pgkeel.types import TYPE_ANNOTATION_MAP
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice, Plan

# -- what the metadata holds (what create_all and the Alembic plugin see) ----------------------


def _indexes(table_indexes: set[Index]) -> dict[str, tuple[list[str], bool, str | None]]:
    out = {}
    for index in table_indexes:
        where = index.dialect_options["postgresql"]["where"]
        out[str(index.name)] = (
            [c.name for c in index.columns],
            bool(index.unique),
            None if where is None else str(where),
        )
    return out


def test_unique_rules_become_partial_unique_indexes_led_by_tenant() -> None:
    indexes = _indexes(Customer.__table__.indexes)  # type: ignore[arg-type]
    assert indexes["uq_customers_tenant_id_email"] == (
        ["tenant_id", "email"],
        True,
        "customers.deleted_at IS NULL",
    )
    assert indexes["idx_customers_tenant_id_is_deleted"] == (
        ["tenant_id", "is_deleted"],
        False,
        None,
    )
    constraints = Customer.__table__.constraints
    assert not [c for c in constraints if isinstance(c, UniqueConstraint)]
    assert not Customer.__table__.c.email.unique


def test_without_tenancy_the_index_is_on_the_column_alone() -> None:
    indexes = _indexes(Plan.__table__.indexes)  # type: ignore[arg-type]
    assert indexes["uq_plans_code"] == (["code"], True, "plans.deleted_at IS NULL")
    assert indexes["idx_plans_is_deleted"] == (["is_deleted"], False, None)


def _isolated_base() -> type[DeclarativeBase]:
    class Base(PgkeelDeclarative, DeclarativeBase):
        metadata: ClassVar[MetaData] = new_metadata()
        type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP

    return Base


def test_names_are_fitted_and_explicit_names_and_opt_outs_are_kept() -> None:
    base = _isolated_base()

    class ExtraordinarilyLongNamedSubscriptionEntitlement(
        UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, base
    ):
        __tenant_foreign_key__ = None
        external_reference_number_assigned_by_partner: Mapped[str] = mapped_column(unique=True)
        code: Mapped[str]
        legacy: Mapped[str]
        __table_args__ = (
            UniqueConstraint("code", name="uq_entitlement_code"),
            UniqueConstraint("legacy", info=allow("all-rows-unique", "tenant-leading-column")),
        )

    table = ExtraordinarilyLongNamedSubscriptionEntitlement.__table__
    indexes = _indexes(table.indexes)  # type: ignore[arg-type]
    long_names = [n for n, (cols, _, _) in indexes.items() if "external" in cols[-1]]
    assert len(long_names) == 1
    assert len(long_names[0].encode()) == 63
    assert long_names[0].startswith("uq_extraordinarily_long_named_subscription_")
    assert all(len(name.encode()) <= 63 for name in indexes)
    assert indexes["uq_entitlement_code"] == (
        ["tenant_id", "code"],
        True,
        f"{table.name}.deleted_at IS NULL",
    )
    kept = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    assert [[col.name for col in c.columns] for c in kept] == [["legacy"]]


def test_create_all_builds_the_partial_indexes(owner_engine: Engine, seeded: Seed) -> None:
    with owner_engine.connect() as connection:
        rows = connection.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers'")
        ).all()
    definitions = dict(rows)  # type: ignore[arg-type]
    assert definitions["uq_customers_tenant_id_email"].endswith(
        "USING btree (tenant_id, email) WHERE (deleted_at IS NULL)"
    )
    assert "UNIQUE" in definitions["uq_customers_tenant_id_email"]
    assert "(tenant_id, is_deleted)" in definitions["idx_customers_tenant_id_is_deleted"]


# -- behaviour --------------------------------------------------------------------------------


def _raw_deleted_at(session: Session, ident: uuid.UUID) -> object:
    return session.execute(
        text("SELECT deleted_at FROM invoices WHERE id = :id"), {"id": ident}
    ).scalar_one()


def test_session_delete_soft_deletes(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[0]):
        invoice = session.get_one(Invoice, seeded.invoices[0, "live"])
        session.delete(invoice)
        session.flush()
        assert invoice.deleted_at is not None
        assert invoice.is_deleted
        assert inspect(invoice).persistent
        assert _raw_deleted_at(session, invoice.id) is not None
        assert session.get(Invoice, invoice.id) is None
        assert session.scalars(select(Invoice).where(Invoice.id == invoice.id)).first() is None


def test_hard_delete_removes_the_row(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[0]):
        invoice = session.get_one(Invoice, seeded.invoices[0, "live"])
        hard_delete(session, invoice)
        session.flush()
        count = session.execute(
            text("SELECT count(*) FROM invoices WHERE id = :id"), {"id": invoice.id}
        ).scalar()
        assert count == 0


def test_restore_brings_a_row_back(session: Session, seeded: Seed) -> None:
    ident = seeded.invoices[0, "deleted"]
    with tenant_context(seeded.tenants[0]):
        assert session.get(Invoice, ident) is None
        invoice = session.get_one(Invoice, ident, execution_options={"include_deleted": True})
        invoice.restore()
        session.commit()
        assert session.get(Invoice, ident) is invoice
        assert not invoice.is_deleted


def test_soft_delete_then_commit_keeps_the_object_usable(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[0]):
        invoice = session.get_one(Invoice, seeded.invoices[0, "live"])
        invoice.soft_delete()
        session.commit()
        assert invoice.is_deleted  # refreshing an object one holds is not a query for rows
        invoice.restore()
        session.commit()
        assert session.get(Invoice, invoice.id) is invoice


def test_bulk_delete_soft_deletes_and_keeps_earlier_deletion_times(
    session: Session, seeded: Seed
) -> None:
    with tenant_context(seeded.tenants[0]):
        before = _raw_deleted_at(session, seeded.invoices[0, "deleted"])
        result = session.execute(
            delete(Invoice).where(Invoice.customer_id == seeded.customers[0, "live"])
        )
        assert result.rowcount == 2  # type: ignore[attr-defined]  # the live ones
        remaining = session.execute(text("SELECT count(*) FROM invoices WHERE NOT is_deleted"))
        assert remaining.scalar() == 5  # the pointer invoices to other customers
        assert _raw_deleted_at(session, seeded.invoices[0, "deleted"]) == before
        every = session.execute(
            delete(Invoice).execution_options(include_deleted=True, synchronize_session=False)
        )
        assert every.rowcount == 8  # type: ignore[attr-defined]
        assert _raw_deleted_at(session, seeded.invoices[0, "deleted"]) == before


def test_bulk_delete_with_hard_delete_removes_rows(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[0]):
        session.execute(
            delete(Invoice)
            .where(Invoice.id == seeded.invoices[0, "live"])
            .execution_options(hard_delete=True)
        )
        count = session.execute(text("SELECT count(*) FROM invoices")).scalar()
        assert count == 7


def test_include_deleted_reaches_the_lazy_loads_of_what_it_loaded(
    session: Session, seeded: Seed
) -> None:
    with tenant_context(seeded.tenants[0]):
        customer = session.scalars(
            select(Customer)
            .where(Customer.id == seeded.customers[0, "live"])
            .execution_options(include_deleted=True)
        ).one()
        ids = {invoice.id for invoice in customer.invoices}
        assert seeded.invoices[0, "deleted"] in ids
        assert seeded.invoices[1, "deleted"] not in ids  # still only this tenant


def test_raw_sql_filters_with_is_deleted(session: Session, seeded: Seed) -> None:
    with tenant_context(seeded.tenants[0]):
        live = session.execute(text("SELECT id FROM customers WHERE NOT is_deleted")).scalars()
        assert set(live) == {seeded.customers[0, "live"]}


def test_a_deleted_value_can_be_used_again_but_two_live_rows_cannot_share_it(
    session: Session, seeded: Seed
) -> None:
    with tenant_context(seeded.tenants[0]):
        again = Customer(name="again", email="deleted@0.test")  # the deleted customer's email
        session.add(again)
        session.flush()
        elsewhere = Customer(name="other tenant", email="live@0.test", tenant_id=seeded.tenants[0])
        session.add(elsewhere)
        with pytest.raises(IntegrityError, match="uq_customers_tenant_id_email"):
            session.flush()
        session.rollback()
    with tenant_context(seeded.tenants[1]):
        session.add(Customer(name="same email, other tenant", email="live@0.test"))
        session.flush()


def test_soft_delete_without_tenancy(session: Session) -> None:
    plan = Plan(code="gold")
    session.add(plan)
    session.flush()
    session.delete(plan)
    session.flush()
    session.add(Plan(code="gold"))
    session.flush()
    assert session.scalars(select(Plan.code)).all() == ["gold"]
    session.add(Plan(code="gold"))
    with pytest.raises(IntegrityError, match="uq_plans_code"):
        session.flush()
