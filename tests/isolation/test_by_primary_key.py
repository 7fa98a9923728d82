"""ORM writes "by primary key" (executed with a list of parameter sets) obey the filters.

SQLAlchemy runs ``session.execute(update(Invoice), [{"id": ..., ...}])`` as one UPDATE per row
without loader criteria. On every role (subject to row-level security, BYPASSRLS, superuser)
such an UPDATE must leave another tenant's row and a soft-deleted row alone, as
``update(Invoice).where(...)`` does; an ORM ``delete()`` by primary key of a soft-delete model is
refused, as SQLAlchemy refuses it for other models.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from tests.isolation.conftest import Seed
from tests.isolation.models import Invoice


def _amounts(session: Session, ids: list[object]) -> dict[object, int]:
    """The amounts stored in the session's transaction, unfiltered but by row-level security.

    A Core statement on the session's connection skips the session hooks: on a role that
    bypasses row-level security it reads every tenant's rows, deleted ones included.
    """
    invoices = Invoice.__table__
    statement = select(invoices.c.id, invoices.c.amount).where(invoices.c.id.in_(ids))
    return {row.id: row.amount for row in session.connection().execute(statement)}


def test_an_update_by_primary_key_leaves_another_tenants_row_alone(
    acting: Session, seeded: Seed
) -> None:
    ids = [seeded.invoices[n, "live"] for n in (0, 1, 2)]
    acting.execute(update(Invoice), [{"id": ident, "amount": 4242} for ident in ids])
    amounts = _amounts(acting, ids)
    assert amounts.pop(ids[0]) == 4242
    assert set(amounts.values()) <= {0}  # the other tenants' rows, where the role sees them


def test_an_update_by_primary_key_leaves_a_soft_deleted_row_alone(
    acting: Session, seeded: Seed
) -> None:
    deleted = seeded.invoices[0, "deleted"]
    acting.execute(update(Invoice), [{"id": deleted, "amount": 4343}])
    by_criteria = acting.execute(update(Invoice).where(Invoice.id == deleted).values(amount=1))
    assert by_criteria.rowcount == 0  # type: ignore[attr-defined]
    assert _amounts(acting, [deleted]) == {deleted: 0}


def test_include_deleted_updates_own_deleted_rows_only(acting: Session, seeded: Seed) -> None:
    ids = [seeded.invoices[n, "deleted"] for n in (0, 1)]
    statement = update(Invoice).execution_options(include_deleted=True)
    acting.execute(statement, [{"id": ident, "amount": 4444} for ident in ids])
    amounts = _amounts(acting, ids)
    assert amounts.pop(ids[0]) == 4444
    assert set(amounts.values()) <= {0}


def test_an_update_by_primary_key_refreshes_the_objects_it_wrote(
    acting: Session, seeded: Seed
) -> None:
    invoice = acting.get_one(Invoice, seeded.invoices[0, "live"])
    assert "amount" in invoice.__dict__  # loaded
    acting.execute(update(Invoice), [{"id": invoice.id, "amount": 4545}])
    assert invoice.amount == 4545


def test_an_update_by_primary_key_without_synchronizing(acting: Session, seeded: Seed) -> None:
    own, theirs = seeded.invoices[0, "live"], seeded.invoices[1, "live"]
    statement = update(Invoice).execution_options(synchronize_session=False)
    acting.execute(statement, [{"id": own, "amount": 4646}, {"id": theirs, "amount": 4646}])
    assert _amounts(acting, [own, theirs]) in ({own: 4646, theirs: 0}, {own: 4646})


def test_a_delete_by_primary_key_of_a_soft_delete_model_is_refused(
    acting: Session, seeded: Seed
) -> None:
    ids = [seeded.invoices[n, "live"] for n in (0, 1)]
    with pytest.raises(InvalidRequestError, match=r"delete\(Invoice\).where\(Invoice.id.in_"):
        acting.execute(delete(Invoice), [{"id": ident} for ident in ids])
    invoices = Invoice.__table__
    deleted = select(invoices.c.id).where(invoices.c.id.in_(ids), invoices.c.deleted_at.isnot(None))
    assert acting.connection().execute(deleted).all() == []
