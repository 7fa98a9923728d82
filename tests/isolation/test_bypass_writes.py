"""Writes and reads on roles that row-level security does not bind: pgkeel's checks alone hold.

System jobs and development databases run as a BYPASSRLS role or a superuser; inside
``tenant_context(t)`` the ORM must still refuse every write to another tenant and filter every
read. Each attack also runs on the runtime role, where row-level security refuses it too.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, func, insert, literal, select, text, union_all, update
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker, with_expression

from pgkeel import (
    CrossTenantWriteError,
    ReadRefusedError,
    UnfilteredReadError,
    tenant_context,
)
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice


def stored_tenant(owner_engine: Engine, ident: uuid.UUID) -> tuple[uuid.UUID, int]:
    with owner_engine.connect() as connection:
        row = connection.execute(
            text("SELECT tenant_id, amount FROM invoices WHERE id = :id"), {"id": ident}
        ).one()
    return row[0], row[1]


# -- writes ------------------------------------------------------------------------------------


def test_bulk_update_to_another_tenant_is_refused(acting: Session, seeded: Seed) -> None:
    own = seeded.invoices[0, "live"]
    statement = update(Invoice).where(Invoice.id == own).values(tenant_id=seeded.tenants[1])
    with pytest.raises(CrossTenantWriteError, match="sets tenant_id to"):
        acting.execute(statement)


def test_bulk_update_to_an_expression_is_refused(acting: Session, seeded: Seed) -> None:
    statement = update(Invoice).values(tenant_id=func.gen_random_uuid())
    with pytest.raises(CrossTenantWriteError, match="SQL expression pgkeel cannot evaluate"):
        acting.execute(statement)


def test_bulk_update_by_primary_key_to_another_tenant_is_refused(
    acting: Session, seeded: Seed
) -> None:
    rows = [{"id": seeded.invoices[0, "live"], "tenant_id": seeded.tenants[2]}]
    with pytest.raises(CrossTenantWriteError):
        acting.execute(update(Invoice), rows)


def test_bulk_update_keeping_the_tenant_passes(acting: Session, seeded: Seed) -> None:
    own = seeded.invoices[0, "live"]
    statement = update(Invoice).where(Invoice.id == own).values(tenant_id=seeded.tenants[0])
    assert acting.execute(statement.values(amount=3)).rowcount == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", ["values()", "executemany", "multi-row values()"])
def test_orm_insert_naming_another_tenant_is_refused(
    acting: Session, seeded: Seed, shape: str
) -> None:
    row = {
        "tenant_id": seeded.tenants[1],
        "customer_id": seeded.customers[1, "live"],
        "number": 77,
    }
    own = {**row, "tenant_id": seeded.tenants[0]}
    statement, parameters = {
        "values()": (insert(Invoice).values(**row), None),
        "executemany": (insert(Invoice), [own, row]),
        "multi-row values()": (insert(Invoice).values([own, row]), None),
    }[shape]
    with pytest.raises(CrossTenantWriteError, match="INSERT into Invoice"):
        acting.execute(statement, parameters)


def test_insert_from_select_copies_only_own_live_rows(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    copied = acting.execute(
        insert(Invoice)
        .from_select(
            ["customer_id", "number", "tenant_id"],
            select(Invoice.customer_id, Invoice.number + 50_000, Invoice.tenant_id).where(
                Invoice.id.in_(
                    [seeded.invoices[n, state] for n in range(3) for state in ("live", "deleted")]
                )
            ),
        )
        .returning(Invoice.tenant_id)
    ).scalars()
    assert list(copied) == [seeded.tenants[0]]


def test_insert_from_select_naming_another_tenant_is_refused(acting: Session, seeded: Seed) -> None:
    statement = insert(Invoice).from_select(
        ["customer_id", "number", "tenant_id"],
        select(Invoice.customer_id, Invoice.number, literal(seeded.tenants[1])),
    )
    with pytest.raises(CrossTenantWriteError):
        acting.execute(statement)


@pytest.mark.parametrize("how", ["add", "merge(load=False)"])
@pytest.mark.parametrize("verb", ["update", "delete"])
def test_a_forged_detached_object_never_touches_the_other_row(  # noqa: PLR0917
    acting: Session,
    seeded: Seed,
    owner_engine: Engine,
    role_engine: Engine,
    runtime_engine: Engine,
    how: str,
    verb: str,
) -> None:
    theirs = seeded.invoices[1, "live"]
    forged = Invoice(
        id=theirs,
        tenant_id=seeded.tenants[0],
        customer_id=seeded.customers[0, "live"],
        number=1,
        amount=5,
    )
    make_transient_to_detached(forged)
    target = acting.merge(forged, load=False) if how != "add" else forged
    if how == "add":
        acting.add(forged)
    if verb == "update":
        target.amount = 999_999
    else:
        acting.delete(target)
    with pytest.raises(Exception) as caught:  # noqa: PT011  # checked below, per role
        acting.flush()
    acting.rollback()
    assert stored_tenant(owner_engine, theirs) == (seeded.tenants[1], 0)
    if role_engine is not runtime_engine:  # row-level security makes it a missing row there
        assert isinstance(caught.value, CrossTenantWriteError)
        assert "belongs to" in str(caught.value)  # another tenant, or one not visible here


# -- reads -------------------------------------------------------------------------------------


def test_from_statement_of_a_select_is_filtered(acting: Session, seeded: Seed) -> None:
    rows = acting.scalars(select(Invoice).from_statement(select(Invoice))).all()
    assert {row.tenant_id for row in rows} == {seeded.tenants[0]}
    assert all(row.deleted_at is None for row in rows)


def _table_selects() -> dict[str, object]:
    invoices = Invoice.__table__
    return {
        "select(Table)": select(invoices),
        "select(Table columns)": select(*invoices.c),
        "union of Table selects": union_all(select(invoices), select(invoices)),
        "select of a Table subquery": select(select(invoices).subquery()),
        "entity column beside a Table column": select(Invoice.id, *list(invoices.c)[1:]),
    }


@pytest.mark.parametrize("shape", list(_table_selects()))
def test_from_statement_of_a_tables_select_is_refused(acting: Session, shape: str) -> None:
    statement = select(Invoice).from_statement(_table_selects()[shape])  # type: ignore[arg-type]
    with pytest.raises(UnfilteredReadError, match=r"Table 'invoices'.*select\(Invoice\)"):
        acting.scalars(statement).all()


def test_from_statement_of_a_tables_select_with_include_deleted(
    acting: Session, role_engine: Engine, runtime_engine: Engine, seeded: Seed
) -> None:
    statement = (
        select(Invoice)
        .from_statement(select(Invoice.__table__))
        .execution_options(include_deleted=True)
    )
    if role_engine is runtime_engine:  # row-level security filters the Table's rows
        rows = acting.scalars(statement).all()
        assert {row.tenant_id for row in rows} == {seeded.tenants[0]}
        assert seeded.invoices[0, "deleted"] in {row.id for row in rows}
    else:
        with pytest.raises(UnfilteredReadError, match="bypasses row-level security"):
            acting.scalars(statement).all()


def test_from_statement_of_entity_columns_is_filtered(acting: Session, seeded: Seed) -> None:
    columns = select(*(getattr(Invoice, column.key) for column in Invoice.__table__.c))
    rows = acting.scalars(select(Invoice).from_statement(columns)).all()
    assert {row.tenant_id for row in rows} == {seeded.tenants[0]}
    assert all(row.deleted_at is None for row in rows)


def test_from_statement_of_textual_sql_on_a_soft_delete_model_is_refused(
    acting: Session,
) -> None:
    statement = select(Invoice).from_statement(text("SELECT * FROM invoices"))
    with pytest.raises(UnfilteredReadError, match="include_deleted=True"):
        acting.scalars(statement).all()


def test_from_statement_of_textual_sql_with_include_deleted(
    acting: Session, role_engine: Engine, runtime_engine: Engine, seeded: Seed
) -> None:
    statement = (
        select(Invoice)
        .from_statement(text("SELECT * FROM invoices WHERE deleted_at IS NULL"))
        .execution_options(include_deleted=True)
    )
    if role_engine is runtime_engine:  # row-level security filters textual SQL
        rows = acting.scalars(statement).all()
        assert {row.tenant_id for row in rows} == {seeded.tenants[0]}
    else:
        with pytest.raises(UnfilteredReadError, match="bypasses row-level security"):
            acting.scalars(statement).all()


def test_with_expression_counts_only_own_live_rows(acting: Session, seeded: Seed) -> None:
    count = select(func.count(Invoice.id)).where(Invoice.customer_id == Customer.id)
    customer = acting.scalars(
        select(Customer)
        .where(Customer.id == seeded.customers[0, "live"])
        .options(with_expression(Customer.invoice_count, count.scalar_subquery()))
    ).one()
    with tenant_context(seeded.tenants[0]):
        mine = acting.scalars(
            select(func.count(Invoice.id)).where(Invoice.customer_id == customer.id)
        ).one()
    assert customer.invoice_count == mine
    assert mine > 0


def test_with_expression_with_include_deleted_counts_deleted_rows_of_own_tenant(
    acting: Session, seeded: Seed
) -> None:
    count = select(func.count(Invoice.id)).where(Invoice.customer_id == Customer.id)
    customer = acting.scalars(
        select(Customer)
        .where(Customer.id == seeded.customers[0, "live"])
        .options(with_expression(Customer.invoice_count, count.scalar_subquery()))
        .execution_options(include_deleted=True)
    ).one()
    assert customer.invoice_count == 3  # tenant 0's live and deleted invoice, and one pointer


def test_a_read_refused_under_row_security_off_is_a_refused_read(
    runtime_sessions: sessionmaker[Session], seeded: Seed
) -> None:
    with tenant_context(seeded.tenants[0]), runtime_sessions() as session:
        session.execute(text("SET LOCAL row_security = off"))
        with pytest.raises(ReadRefusedError, match="refused to read 'customers'") as caught:
            session.scalars(select(Customer)).all()
    assert "row_security is off" in str(caught.value)
    assert "Fix:" in str(caught.value)


@pytest.mark.parametrize("shape", ["select", "union", "Core table"])
def test_insert_from_select_gives_each_row_its_own_uuid7(
    acting: Session, seeded: Seed, shape: str
) -> None:
    own = [seeded.invoices[0, "live"], seeded.pointers[0, 0, "live"], seeded.pointers[0, 1, "live"]]
    source = select(Invoice.customer_id, Invoice.number + 60_000).where(Invoice.id.in_(own))
    query = {
        "select": source,
        "union": source.union_all(source),
        "Core table": source,
    }[shape]
    target = Invoice.__table__ if shape == "Core table" else Invoice
    statement = insert(target).from_select(["customer_id", "number"], query)
    acting.execute(statement)
    ids = acting.scalars(select(Invoice.id).where(Invoice.number >= 60_000)).all()
    assert len(ids) == len(set(ids)) == (6 if shape == "union" else 3)
    assert {ident.version for ident in ids} == {7}
    stamps = {ident.int >> 80 for ident in ids}  # the 48-bit milliseconds
    now = acting.scalar(select(func.floor(func.extract("epoch", func.clock_timestamp()) * 1000)))
    assert all(abs(stamp - int(now)) < 600_000 for stamp in stamps)  # type: ignore[arg-type]
