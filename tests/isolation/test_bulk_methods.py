"""The legacy bulk methods (``bulk_save_objects``, ``bulk_*_mappings``) obey the tenant rules.

They write without a flush; on every role (subject to row-level security, BYPASSRLS, superuser)
they must give new rows the current tenant, refuse rows naming another tenant, and never update
a row whose stored tenant is another, on the runtime role by row-level security, on the others
by pgkeel's checks alone.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from pgkeel import (
    ALL_TENANTS,
    CrossTenantWriteError,
    TenantNotSetError,
    create_sessionmaker,
    tenant_context,
)
from tests.isolation.conftest import Seed, stored_row
from tests.isolation.models import Invoice


def _own_invoice(seeded: Seed, number: int, **values: object) -> dict[str, object]:
    return {"customer_id": seeded.customers[0, "live"], "number": number, **values}


def test_bulk_insert_mappings_fill_in_the_tenant(acting: Session, seeded: Seed) -> None:
    acting.bulk_insert_mappings(Invoice, [_own_invoice(seeded, 4101), _own_invoice(seeded, 4101)])  # type: ignore[arg-type]
    rows = acting.scalars(select(Invoice).where(Invoice.number == 4101)).all()
    assert [row.tenant_id for row in rows] == [seeded.tenants[0]] * 2


def test_bulk_save_objects_fill_in_the_tenant(acting: Session, seeded: Seed) -> None:
    acting.bulk_save_objects([Invoice(**_own_invoice(seeded, 4102))])
    rows = acting.scalars(select(Invoice).where(Invoice.number == 4102)).all()
    assert [row.tenant_id for row in rows] == [seeded.tenants[0]]


@pytest.mark.parametrize("method", ["bulk_insert_mappings", "bulk_save_objects"])
def test_bulk_insert_naming_another_tenant_is_refused(
    acting: Session, seeded: Seed, owner_engine: Engine, method: str
) -> None:
    row = _own_invoice(seeded, 4103, tenant_id=seeded.tenants[1])
    write = {
        "bulk_insert_mappings": lambda: acting.bulk_insert_mappings(
            Invoice,  # type: ignore[arg-type]
            [_own_invoice(seeded, 4103), row],
        ),
        "bulk_save_objects": lambda: acting.bulk_save_objects([Invoice(**row)]),
    }[method]
    with pytest.raises(CrossTenantWriteError, match="bulk insert of Invoice"):
        write()
    acting.rollback()
    with owner_engine.connect() as connection:
        assert connection.execute(select(Invoice.id).where(Invoice.number == 4103)).all() == []


def test_bulk_update_mappings_setting_another_tenant_is_refused(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    own = seeded.invoices[0, "live"]
    with pytest.raises(CrossTenantWriteError, match="bulk update of Invoice"):
        acting.bulk_update_mappings(Invoice, [{"id": own, "tenant_id": seeded.tenants[1]}])  # type: ignore[arg-type]
    acting.rollback()
    assert stored_row(owner_engine, "invoices", own)["tenant_id"] == seeded.tenants[0]  # type: ignore[index]


def test_bulk_update_mappings_of_another_tenants_row_changes_nothing(
    acting: Session, seeded: Seed, owner_engine: Engine, role_engine: Engine, runtime_engine: Engine
) -> None:
    theirs = seeded.invoices[1, "live"]
    change = [{"id": theirs, "tenant_id": seeded.tenants[0], "amount": 666}]
    if role_engine is runtime_engine:  # row-level security: the UPDATE matches no row
        with pytest.raises(StaleDataError, match="0 were matched"):
            acting.bulk_update_mappings(Invoice, change)  # type: ignore[arg-type]
        acting.rollback()
    else:
        with pytest.raises(CrossTenantWriteError, match="belongs to another tenant"):
            acting.bulk_update_mappings(Invoice, change)  # type: ignore[arg-type]
        acting.rollback()
    stored = stored_row(owner_engine, "invoices", theirs)
    assert stored is not None
    assert (stored["tenant_id"], stored["amount"]) == (seeded.tenants[1], 0)


def test_bulk_save_objects_of_a_forged_detached_object_changes_nothing(
    acting: Session, seeded: Seed, owner_engine: Engine, role_engine: Engine, runtime_engine: Engine
) -> None:
    theirs = seeded.invoices[2, "live"]
    forged = Invoice(id=theirs, **_own_invoice(seeded, 1, tenant_id=seeded.tenants[0]))
    make_transient_to_detached(forged)
    forged.amount = 5
    if role_engine is runtime_engine:
        with pytest.raises(StaleDataError, match="0 were matched"):
            acting.bulk_save_objects([forged])
        acting.rollback()
    else:
        with pytest.raises(CrossTenantWriteError, match="belongs to another tenant"):
            acting.bulk_save_objects([forged])
        acting.rollback()
    stored = stored_row(owner_engine, "invoices", theirs)
    assert stored is not None
    assert (stored["tenant_id"], stored["amount"]) == (seeded.tenants[2], 0)


def test_bulk_update_of_own_rows_passes(acting: Session, seeded: Seed) -> None:
    own = seeded.invoices[0, "live"]
    acting.bulk_update_mappings(Invoice, [{"id": own, "amount": 12}])  # type: ignore[arg-type]
    assert acting.scalars(select(Invoice.amount).where(Invoice.id == own)).one() == 12


def test_bulk_writes_need_a_tenant(role_engine: Engine, seeded: Seed) -> None:
    with create_sessionmaker(role_engine)() as session:
        with pytest.raises(TenantNotSetError):
            session.bulk_insert_mappings(Invoice, [_own_invoice(seeded, 4104)])  # type: ignore[arg-type]
        with pytest.raises(TenantNotSetError):
            session.bulk_update_mappings(Invoice, [{"id": seeded.invoices[0, "live"]}])  # type: ignore[arg-type]
        with tenant_context(ALL_TENANTS), pytest.raises(TenantNotSetError, match="ALL_TENANTS"):
            session.bulk_insert_mappings(Invoice, [_own_invoice(seeded, 4104)])  # type: ignore[arg-type]
