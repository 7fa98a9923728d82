"""A hostile reviewer's attacks on tenant isolation and soft delete, on the three roles.

Each attack acts as tenant 0 (``acting``: the runtime role, a BYPASSRLS role, the superuser)
and aims at rows of other tenants or deleted rows through a load path other than a plain
``select()``: the identity map after a tenant switch, ``populate_existing``, ``yield_per``,
relationship loaders, compound and nested SELECTs, aliases, ``RETURNING``, ``merge``,
``refresh``, the legacy ``Query`` API, ``scoped_session``. A test passes when the guarantee
holds: only tenant 0's live rows come back, nothing of another tenant changes.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    delete,
    exists,
    func,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.orm import (
    Session,
    aliased,
    joinedload,
    make_transient_to_detached,
    scoped_session,
    selectinload,
    subqueryload,
)
from sqlalchemy.orm.exc import ObjectDeletedError

from pgkeel import PgkeelError, create_sessionmaker, tenant_context
from pgkeel.errors import UnfilteredReadError
from tests.isolation.conftest import Seed, stored_row
from tests.isolation.models import Customer, Invoice, Tag


def _own_live(rows: Any, seeded: Seed) -> None:  # ORM objects
    """Every row is tenant 0's and live."""
    rows = list(rows)
    assert {row.tenant_id for row in rows} <= {seeded.tenants[0]}
    assert all(row.deleted_at is None for row in rows)


def _ids_own_live(session: Session, ids: Any, seeded: Seed) -> None:
    """Every id read belongs to a live row of tenant 0."""
    ids = set(ids)
    found = session.scalars(select(Invoice).where(Invoice.id.in_(ids))).all()
    assert {row.id for row in found} == ids


# -- the identity map and a tenant switch ------------------------------------------------------


def test_get_after_a_tenant_switch_hides_the_mapped_object(acting: Session, seeded: Seed) -> None:
    own = acting.get(Invoice, seeded.invoices[0, "live"])
    assert own is not None
    with tenant_context(seeded.tenants[1]):
        assert acting.get(Invoice, seeded.invoices[0, "live"]) is None


def test_populate_existing_after_a_tenant_switch_reads_nothing(
    acting: Session, seeded: Seed
) -> None:
    own = seeded.invoices[0, "live"]
    assert acting.get(Invoice, own) is not None
    with tenant_context(seeded.tenants[1]):
        statement = select(Invoice).where(Invoice.id == own)
        assert acting.scalars(statement.execution_options(populate_existing=True)).all() == []
        theirs = select(Invoice).execution_options(populate_existing=True)
        assert {row.tenant_id for row in acting.scalars(theirs)} == {seeded.tenants[1]}


def test_refresh_after_a_tenant_switch_reads_nothing(acting: Session, seeded: Seed) -> None:
    own = acting.get(Invoice, seeded.invoices[0, "live"])
    assert own is not None
    with tenant_context(seeded.tenants[1]), pytest.raises(InvalidRequestError):
        acting.refresh(own)


def test_an_expired_object_after_a_tenant_switch_loads_nothing(
    acting: Session, seeded: Seed
) -> None:
    own = acting.get(Invoice, seeded.invoices[0, "live"])
    assert own is not None
    acting.expire(own)
    with tenant_context(seeded.tenants[1]), pytest.raises(ObjectDeletedError):
        _ = own.amount
    with tenant_context(seeded.tenants[1]):
        assert acting.get(Invoice, seeded.invoices[0, "live"]) is None


@pytest.mark.parametrize("how", ["refresh", "expired attribute", "merge(load=False)"])
def test_a_forged_object_never_loads_another_tenants_row(
    acting: Session, seeded: Seed, how: str
) -> None:
    """An object built with another tenant's id: loading its attributes reads nothing of theirs."""
    forged = Invoice(id=seeded.invoices[1, "live"])
    make_transient_to_detached(forged)
    if how == "merge(load=False)":
        forged = acting.merge(forged, load=False)
    else:
        acting.add(forged)
    if how == "refresh":
        with pytest.raises(InvalidRequestError):
            acting.refresh(forged)
    else:
        with pytest.raises(ObjectDeletedError):
            _ = forged.number


def test_refresh_of_a_row_deleted_meanwhile_shows_it_deleted(acting: Session, seeded: Seed) -> None:
    own = acting.get(Invoice, seeded.invoices[0, "live"])
    assert own is not None
    acting.execute(delete(Invoice).where(Invoice.id == own.id))
    acting.refresh(own)  # the caller holds it: refreshed, deleted_at shows
    assert own.deleted_at is not None
    assert acting.get(Invoice, own.id) is None


# -- load strategies ---------------------------------------------------------------------------


def test_yield_per_streams_only_own_live_rows(acting: Session, seeded: Seed) -> None:
    rows = acting.scalars(select(Invoice).execution_options(yield_per=2))
    _own_live(rows, seeded)


@pytest.mark.parametrize("loader", [selectinload, subqueryload, joinedload])
def test_eager_loaders_load_only_own_live_rows(
    acting: Session,
    seeded: Seed,
    loader: Any,
) -> None:
    customers = acting.scalars(select(Customer).options(loader(Customer.invoices))).unique()
    for customer in customers:
        _own_live(customer.invoices, seeded)


def test_lazy_loads_after_a_tenant_switch_read_no_other_tenant(
    acting: Session, seeded: Seed
) -> None:
    customer = acting.get(Customer, seeded.customers[0, "live"])
    assert customer is not None
    with tenant_context(seeded.tenants[1]):
        assert {row.tenant_id for row in customer.invoices} <= {seeded.tenants[0]}
        assert all(row.deleted_at is None for row in customer.invoices)


# -- compound and nested SELECTs ---------------------------------------------------------------


def test_union_of_orm_selects_is_filtered(acting: Session, seeded: Seed) -> None:
    both = union_all(select(Invoice.id), select(Invoice.id).where(Invoice.number > 0))
    _ids_own_live(
        acting, acting.scalars(select(literal_column("id")).select_from(both.subquery())), seeded
    )


def test_cte_and_exists_are_filtered(acting: Session, seeded: Seed) -> None:
    cte = select(Invoice.id, Invoice.customer_id).cte("own")
    ids = acting.scalars(select(cte.c.id)).all()
    _ids_own_live(acting, ids, seeded)
    with_invoices = select(Customer).where(exists().where(Invoice.customer_id == Customer.id))
    _own_live(acting.scalars(with_invoices), seeded)


def test_lateral_subquery_is_filtered(acting: Session, seeded: Seed) -> None:
    latest = (
        select(Invoice.id)
        .where(Invoice.customer_id == Customer.id)
        .order_by(Invoice.number.desc())
        .limit(50)
        .lateral()
    )
    statement = select(Customer.id, latest.c.id).join(latest, true())
    rows = acting.execute(statement).all()
    assert rows
    _ids_own_live(acting, [invoice for _customer, invoice in rows], seeded)
    customers = {customer for customer, _invoice in rows}
    assert customers <= {seeded.customers[0, "live"], seeded.customers[0, "deleted"]}
    assert seeded.customers[0, "deleted"] not in customers


def test_aliased_entities_are_filtered(acting: Session, seeded: Seed) -> None:
    other = aliased(Invoice)
    rows = acting.execute(
        select(Invoice, other).join(other, other.customer_id == Invoice.customer_id)
    )
    for first, second in rows:
        _own_live([first, second], seeded)


def test_count_over_a_mapped_class_is_filtered(acting: Session, seeded: Seed) -> None:
    count = acting.scalar(select(func.count()).select_from(Invoice))
    assert count == len(acting.scalars(select(Invoice)).all())


def test_the_legacy_query_api_is_filtered(acting: Session, seeded: Seed) -> None:
    _own_live(acting.query(Invoice).all(), seeded)
    _own_live(acting.query(Tag).filter(Tag.label.like("tag%")).all(), seeded)


def test_scoped_session_is_filtered(role_engine: Engine, seeded: Seed) -> None:
    registry = scoped_session(create_sessionmaker(role_engine))
    try:
        with tenant_context(seeded.tenants[0]):
            _own_live(registry.scalars(select(Invoice)), seeded)
    finally:
        registry.remove()


# -- writes with RETURNING, merge ----------------------------------------------------------------


def test_update_returning_returns_and_changes_only_own_rows(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    returned = acting.execute(
        update(Invoice).values(amount=Invoice.amount + 1).returning(Invoice.id, Invoice.tenant_id)
    ).all()
    assert returned
    assert {tenant for _id, tenant in returned} == {seeded.tenants[0]}
    theirs = seeded.invoices[1, "live"]
    aimed = update(Invoice).where(Invoice.id == theirs).values(amount=7).returning(Invoice.id)
    assert acting.execute(aimed).all() == []
    acting.commit()
    assert stored_row(owner_engine, "invoices", theirs)["amount"] == 0  # type: ignore[index]


def test_soft_delete_returning_returns_only_own_rows(acting: Session, seeded: Seed) -> None:
    returned = acting.execute(delete(Invoice).returning(Invoice.tenant_id)).scalars().all()
    assert set(returned) == {seeded.tenants[0]}
    theirs = delete(Invoice).where(Invoice.id == seeded.invoices[2, "live"]).returning(Invoice.id)
    assert acting.execute(theirs).all() == []


def test_merge_of_another_tenants_id_never_changes_it(
    acting: Session, seeded: Seed, owner_engine: Engine
) -> None:
    theirs = seeded.invoices[1, "live"]
    forged = Invoice(id=theirs, customer_id=seeded.customers[0, "live"], number=5, amount=99)
    merged = acting.merge(forged)  # load=True: the filtered load finds nothing
    assert merged.tenant_id is None or merged.tenant_id == seeded.tenants[0]
    with pytest.raises((IntegrityError, PgkeelError)):  # the id is taken: never an update
        acting.flush()
    acting.rollback()
    stored = stored_row(owner_engine, "invoices", theirs)
    assert stored is not None
    assert (stored["tenant_id"], stored["amount"]) == (seeded.tenants[1], 0)


def test_merge_never_hands_back_a_hidden_object_of_the_identity_map(
    acting: Session, seeded: Seed
) -> None:
    """``merge`` reads the identity map without the guard ``get`` goes through: refused."""
    own = acting.get_one(Invoice, seeded.invoices[0, "live"])
    acting.delete(own)
    acting.flush()
    assert acting.get(Invoice, own.id) is None
    probe = Invoice(id=own.id)
    make_transient_to_detached(probe)
    with pytest.raises(UnfilteredReadError, match="soft-deleted, or another tenant's"):
        acting.merge(probe)
    theirs = seeded.invoices[1, "live"]
    with tenant_context(seeded.tenants[1]):
        loaded = acting.get_one(Invoice, theirs)
    assert acting.get(Invoice, theirs) is None  # back in tenant 0's context
    probe = Invoice(id=theirs)
    make_transient_to_detached(probe)
    with pytest.raises(UnfilteredReadError, match="Fix: merge in the tenant context"):
        acting.merge(probe)
    assert loaded.tenant_id == seeded.tenants[1]  # untouched
    with tenant_context(seeded.tenants[1]):
        same = Invoice(id=theirs)
        make_transient_to_detached(same)
        assert acting.merge(same) is loaded  # in its own tenant's context, as SQLAlchemy does


def test_a_new_id_for_each_object_even_when_read_early(acting: Session, seeded: Seed) -> None:
    made = [Invoice(customer_id=seeded.customers[0, "live"], number=n) for n in range(3)]
    assert len({invoice.id for invoice in made}) == 3
    assert all(isinstance(invoice.id, uuid.UUID) for invoice in made)


@pytest.mark.parametrize(
    "options",
    [{}, {"populate_existing": True}, {"with_for_update": True}],
    ids=["plain", "populate_existing", "with_for_update"],
)
def test_get_of_another_tenants_or_a_deleted_id_is_none(
    acting: Session, seeded: Seed, options: dict[str, Any]
) -> None:
    for ident in (seeded.invoices[1, "live"], seeded.invoices[0, "deleted"]):
        assert acting.get(Invoice, ident, **options) is None
    found = acting.get(
        Invoice, seeded.invoices[0, "deleted"], execution_options={"include_deleted": True}
    )
    assert found is not None
    assert found.tenant_id == seeded.tenants[0]


def test_a_deleted_object_in_the_identity_map_stays_hidden(acting: Session, seeded: Seed) -> None:
    own = acting.get(Invoice, seeded.invoices[0, "live"])
    assert own is not None
    acting.delete(own)
    acting.flush()
    assert acting.get(Invoice, own.id) is None
    assert acting.scalars(select(Invoice).where(Invoice.id == own.id)).all() == []
