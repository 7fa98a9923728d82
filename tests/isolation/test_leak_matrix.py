"""The leak matrix: every load path x {live, deleted} x {own tenant, other tenant}.

Tenant 0 is acting. Each path tries to reach one seeded row; only tenant 0's live row may come
back. The matrix runs three times: as the runtime role (ORM filters and row-level security), and
as two roles that bypass row-level security (a BYPASSRLS system-job role and the superuser), so
the ORM filters alone must hold. Raw SQL paths
run as the runtime role only: there the database alone must hide the other tenant's rows (it
does not hide soft-deleted rows: raw SQL filters on ``is_deleted`` itself).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, delete, exists, func, insert, select, text, update
from sqlalchemy.orm import (
    Session,
    aliased,
    immediateload,
    joinedload,
    selectinload,
    sessionmaker,
    subqueryload,
    with_expression,
)

from pgkeel import create_sessionmaker, tenant_context
from tests.isolation.conftest import Seed
from tests.isolation.models import Customer, Invoice, Tag, customer_tags

Load = Callable[[Session, Seed, int, str], bool]
OWN, OTHER = 0, 1
CATEGORIES = [(OWN, "live"), (OWN, "deleted"), (OTHER, "live"), (OTHER, "deleted")]


@dataclass(frozen=True)
class Path:
    name: str
    load: Load
    raw: bool = False


def _preload(session: Session, model: type, ident: uuid.UUID, tenant: uuid.UUID) -> None:
    """Put the row in the identity map, loaded in its own tenant's context with deleted rows."""
    with tenant_context(tenant):
        statement = select(model).where(model.id == ident)  # type: ignore[attr-defined]
        session.execute(statement.execution_options(include_deleted=True)).scalar_one()


def _c0(seed: Seed) -> uuid.UUID:
    return seed.customers[OWN, "live"]


def _parent(session: Session, seed: Seed, option: object = None) -> Customer:
    statement = select(Customer).where(Customer.id == _c0(seed))
    if option is not None:
        statement = statement.options(option)  # type: ignore[arg-type]
    return session.scalars(statement).unique().one()


# -- invoices: tenant 0's live customer has invoices of every tenant, live and deleted --------


def invoice(seed: Seed, n: int, state: str) -> uuid.UUID:
    return seed.invoices[n, state]


def _ids(rows: object) -> set[uuid.UUID]:
    return {row.id for row in rows}  # type: ignore[attr-defined]


INVOICE_PATHS = [
    Path(
        "select entity", lambda s, d, n, st: invoice(d, n, st) in _ids(s.scalars(select(Invoice)))
    ),
    Path(
        "select column",
        lambda s, d, n, st: invoice(d, n, st) in set(s.scalars(select(Invoice.id))),
    ),
    Path(
        "select where id",
        lambda s, d, n, st: (
            s.scalars(select(Invoice).where(Invoice.id == invoice(d, n, st))).one_or_none()
            is not None
        ),
    ),
    Path("Session.get", lambda s, d, n, st: s.get(Invoice, invoice(d, n, st)) is not None),
    Path(
        "Session.get, in identity map",
        lambda s, d, n, st: (
            _preload(s, Invoice, invoice(d, n, st), d.tenants[n]),
            s.get(Invoice, invoice(d, n, st)) is not None,
        )[1],
    ),
    Path(
        "Session.get populate_existing",
        lambda s, d, n, st: (
            _preload(s, Invoice, invoice(d, n, st), d.tenants[n]),
            s.get(Invoice, invoice(d, n, st), populate_existing=True) is not None,
        )[1],
    ),
    Path(
        "Session.get with_for_update",
        lambda s, d, n, st: s.get(Invoice, invoice(d, n, st), with_for_update=True) is not None,
    ),
    Path(
        "select populate_existing, in identity map",
        lambda s, d, n, st: (
            _preload(s, Invoice, invoice(d, n, st), d.tenants[n]),
            invoice(d, n, st)
            in _ids(s.scalars(select(Invoice).execution_options(populate_existing=True))),
        )[1],
    ),
    Path(
        "legacy Query",
        lambda s, d, n, st: (
            s.query(Invoice).filter_by(id=invoice(d, n, st)).one_or_none() is not None
        ),
    ),
    Path("lazy one-to-many", lambda s, d, n, st: invoice(d, n, st) in _ids(_parent(s, d).invoices)),
    Path(
        "joinedload one-to-many",
        lambda s, d, n, st: (
            invoice(d, n, st) in _ids(_parent(s, d, joinedload(Customer.invoices)).invoices)
        ),
    ),
    Path(
        "selectinload one-to-many",
        lambda s, d, n, st: (
            invoice(d, n, st) in _ids(_parent(s, d, selectinload(Customer.invoices)).invoices)
        ),
    ),
    Path(
        "subqueryload one-to-many",
        lambda s, d, n, st: (
            invoice(d, n, st) in _ids(_parent(s, d, subqueryload(Customer.invoices)).invoices)
        ),
    ),
    Path(
        "immediateload one-to-many",
        lambda s, d, n, st: (
            invoice(d, n, st) in _ids(_parent(s, d, immediateload(Customer.invoices)).invoices)
        ),
    ),
    Path(
        "aliased",
        lambda s, d, n, st: invoice(d, n, st) in set(s.scalars(select(aliased(Invoice).id))),
    ),
    Path(
        "outer join on relationship",
        lambda s, d, n, st: _outer_join(s, d, invoice(d, n, st), on_relationship=True),
    ),
    Path(
        "outer join on condition",
        lambda s, d, n, st: _outer_join(s, d, invoice(d, n, st), on_relationship=False),
    ),
    Path(
        "any()",
        lambda s, d, n, st: (
            s.scalars(
                select(Customer.id).where(
                    Customer.id == _c0(d), Customer.invoices.any(Invoice.id == invoice(d, n, st))
                )
            ).first()
            is not None
        ),
    ),
    Path(
        "IN subquery",
        lambda s, d, n, st: (
            s.scalars(
                select(Customer.id).where(
                    Customer.id.in_(
                        select(Invoice.customer_id).where(Invoice.id == invoice(d, n, st))
                    )
                )
            ).first()
            is not None
        ),
    ),
    Path(
        "FROM subquery",
        lambda s, d, n, st: (
            invoice(d, n, st) in set(s.scalars(select(select(Invoice.id).subquery().c.id)))
        ),
    ),
    Path(
        "CTE",
        lambda s, d, n, st: (
            invoice(d, n, st) in set(s.scalars(select(select(Invoice.id).cte().c.id)))
        ),
    ),
    Path(
        "entity aliased to a CTE",
        lambda s, d, n, st: (
            invoice(d, n, st) in set(s.scalars(select(aliased(Invoice, select(Invoice).cte()).id)))
        ),
    ),
    Path(
        "EXISTS",
        lambda s, d, n, st: bool(s.scalar(select(exists().where(Invoice.id == invoice(d, n, st))))),
    ),
    Path(
        "count()",
        lambda s, d, n, st: (
            s.scalar(select(func.count(Invoice.id)).where(Invoice.id == invoice(d, n, st))) == 1
        ),
    ),
    Path(
        "UNION",
        lambda s, d, n, st: (
            invoice(d, n, st)
            in set(
                s.scalars(
                    select(Invoice.id)
                    .where(Invoice.number < 0)
                    .union(select(Invoice.id).where(Invoice.id == invoice(d, n, st)))
                )
            )
        ),
    ),
    Path(
        "from_statement(select())",
        lambda s, d, n, st: (
            invoice(d, n, st)
            in _ids(
                s.scalars(
                    select(Invoice).from_statement(
                        select(Invoice).where(Invoice.id == invoice(d, n, st))
                    )
                )
            )
        ),
    ),
    Path(
        "with_expression() count",
        lambda s, d, n, st: (
            s.scalars(
                select(Customer)
                .where(Customer.id == _c0(d))
                .options(
                    with_expression(
                        Customer.invoice_count,
                        select(func.count(Invoice.id))
                        .where(Invoice.id == invoice(d, n, st))
                        .scalar_subquery(),
                    )
                )
            )
            .one()
            .invoice_count
            == 1
        ),
    ),
    Path(
        "with_expression() through a join",
        lambda s, d, n, st: (
            s.scalars(
                select(Customer)
                .where(Customer.id == _c0(d))
                .options(
                    with_expression(
                        Customer.invoice_count,
                        select(func.count(Invoice.id))
                        .join(Customer, Customer.id == Invoice.customer_id)
                        .where(Invoice.id == invoice(d, n, st))
                        .scalar_subquery(),
                    )
                )
            )
            .one()
            .invoice_count
            == 1
        ),
    ),
    Path(
        "insert().from_select() copies",
        lambda s, d, n, st: (
            len(
                s.execute(
                    insert(Invoice)
                    .from_select(
                        ["customer_id", "number", "amount"],
                        select(Invoice.customer_id, Invoice.number, Invoice.amount).where(
                            Invoice.id == invoice(d, n, st)
                        ),
                    )
                    .returning(Invoice.id)
                ).all()
            )
            == 1
        ),
    ),
    Path(
        "bulk update()",
        lambda s, d, n, st: (
            s.execute(
                update(Invoice).where(Invoice.id == invoice(d, n, st)).values(amount=7)
            ).rowcount  # type: ignore[attr-defined]
            == 1
        ),
    ),
    Path(
        "bulk update() synchronize_session=fetch",
        lambda s, d, n, st: (
            s.execute(
                update(Invoice)
                .where(Invoice.id == invoice(d, n, st))
                .values(amount=7)
                .execution_options(synchronize_session="fetch")
            ).rowcount  # type: ignore[attr-defined]
            == 1
        ),
    ),
    Path(
        "bulk delete()",
        lambda s, d, n, st: (
            s.execute(delete(Invoice).where(Invoice.id == invoice(d, n, st))).rowcount  # type: ignore[attr-defined]
            == 1
        ),
    ),
    Path(
        "bulk delete() hard_delete=True",
        lambda s, d, n, st: (
            s.execute(
                delete(Invoice)
                .where(Invoice.id == invoice(d, n, st))
                .execution_options(hard_delete=True, synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            == 1
        ),
    ),
    Path(
        "raw SQL",
        lambda s, d, n, st: (
            s.execute(
                text("SELECT id FROM invoices WHERE id = :id"), {"id": invoice(d, n, st)}
            ).first()
            is not None
        ),
        raw=True,
    ),
    Path(
        "raw UPDATE",
        lambda s, d, n, st: (
            s.execute(
                text("UPDATE invoices SET amount = 9 WHERE id = :id"), {"id": invoice(d, n, st)}
            ).rowcount  # type: ignore[attr-defined]
            == 1
        ),
        raw=True,
    ),
    Path(
        "raw DELETE",
        lambda s, d, n, st: (
            s.execute(
                text("DELETE FROM invoices WHERE id = :id"), {"id": invoice(d, n, st)}
            ).rowcount  # type: ignore[attr-defined]
            == 1
        ),
        raw=True,
    ),
]


def _outer_join(s: Session, d: Seed, target: uuid.UUID, *, on_relationship: bool) -> bool:
    statement = select(Customer.id, Invoice.id).where(Customer.id == _c0(d))
    if on_relationship:
        statement = statement.outerjoin(Customer.invoices)
    else:
        statement = statement.outerjoin(Invoice, Invoice.customer_id == Customer.id)
    rows = s.execute(statement).all()
    assert rows, "the outer row must survive: the criteria belong in ON, not in WHERE"
    return target in {invoice_id for _customer, invoice_id in rows}


# -- customers: tenant 0's live invoices point at customers of every tenant -------------------


def pointer(seed: Seed, n: int, state: str) -> uuid.UUID:
    return seed.pointers[OWN, n, state]


def _pointer_invoice(s: Session, d: Seed, n: int, st: str, option: object = None) -> Invoice:
    statement = select(Invoice).where(Invoice.id == pointer(d, n, st))
    if option is not None:
        statement = statement.options(option)  # type: ignore[arg-type]
    return s.scalars(statement).one()


CUSTOMER_PATHS = [
    Path(
        "lazy many-to-one", lambda s, d, n, st: _pointer_invoice(s, d, n, st).customer is not None
    ),
    Path(
        "lazy many-to-one, in identity map",
        lambda s, d, n, st: (
            _preload(s, Customer, d.customers[n, st], d.tenants[n]),
            _pointer_invoice(s, d, n, st).customer is not None,
        )[1],
    ),
    Path(
        "joinedload many-to-one",
        lambda s, d, n, st: (
            _pointer_invoice(s, d, n, st, joinedload(Invoice.customer)).customer is not None
        ),
    ),
    Path(
        "selectinload many-to-one",
        lambda s, d, n, st: (
            _pointer_invoice(s, d, n, st, selectinload(Invoice.customer)).customer is not None
        ),
    ),
    Path(
        "has()",
        lambda s, d, n, st: (
            s.scalars(
                select(Invoice.id).where(Invoice.id == pointer(d, n, st), Invoice.customer.has())
            ).first()
            is not None
        ),
    ),
    Path(
        "inner join",
        lambda s, d, n, st: (
            s.scalars(
                select(Invoice.id).join(Invoice.customer).where(Invoice.id == pointer(d, n, st))
            ).first()
            is not None
        ),
    ),
    Path(
        "raw join",
        lambda s, d, n, st: (
            s.execute(
                text(
                    "SELECT c.id FROM invoices i JOIN customers c ON c.id = i.customer_id "
                    "WHERE i.id = :id"
                ),
                {"id": pointer(d, n, st)},
            ).first()
            is not None
        ),
        raw=True,
    ),
]


# -- tags: many-to-many through customer_tags from tenant 0's live customer --------------------


def tag(seed: Seed, n: int, state: str) -> uuid.UUID:
    return seed.tags[n, state]


TAG_PATHS = [
    Path("lazy many-to-many", lambda s, d, n, st: tag(d, n, st) in _ids(_parent(s, d).tags)),
    Path(
        "joinedload many-to-many",
        lambda s, d, n, st: tag(d, n, st) in _ids(_parent(s, d, joinedload(Customer.tags)).tags),
    ),
    Path(
        "selectinload many-to-many",
        lambda s, d, n, st: tag(d, n, st) in _ids(_parent(s, d, selectinload(Customer.tags)).tags),
    ),
    Path(
        "subqueryload many-to-many",
        lambda s, d, n, st: tag(d, n, st) in _ids(_parent(s, d, subqueryload(Customer.tags)).tags),
    ),
    Path(
        "any() many-to-many",
        lambda s, d, n, st: (
            s.scalars(select(Customer.id).where(Customer.tags.any(Tag.id == tag(d, n, st)))).first()
            is not None
        ),
    ),
    Path(
        "join through secondary",
        lambda s, d, n, st: (
            tag(d, n, st)
            in set(
                s.scalars(
                    select(Tag.id)
                    .join(customer_tags, customer_tags.c.tag_id == Tag.id)
                    .where(customer_tags.c.customer_id == _c0(d))
                )
            )
        ),
    ),
    Path(
        "raw through secondary",
        lambda s, d, n, st: (
            s.execute(
                text(
                    "SELECT t.id FROM tags t JOIN customer_tags ct ON ct.tag_id = t.id "
                    "WHERE t.id = :id"
                ),
                {"id": tag(d, n, st)},
            ).first()
            is not None
        ),
        raw=True,
    ),
]

ALL_PATHS = [
    *(pytest.param(p, id=f"invoice: {p.name}") for p in INVOICE_PATHS),
    *(pytest.param(p, id=f"customer: {p.name}") for p in CUSTOMER_PATHS),
    *(pytest.param(p, id=f"tag: {p.name}") for p in TAG_PATHS),
]


@pytest.fixture(scope="module")
def owner_sessions(owner_engine: Engine) -> sessionmaker[Session]:
    return create_sessionmaker(owner_engine)


@pytest.fixture(scope="module")
def bypass_sessions(bypass_engine: Engine) -> sessionmaker[Session]:
    return create_sessionmaker(bypass_engine)


@pytest.fixture(
    params=["runtime role", "BYPASSRLS role: ORM filters alone", "superuser: ORM filters alone"]
)
def acting_session(request: pytest.FixtureRequest) -> Iterator[Session]:
    fixture = {
        "runtime role": "runtime_sessions",
        "BYPASSRLS role: ORM filters alone": "bypass_sessions",
        "superuser: ORM filters alone": "owner_sessions",
    }[request.param]
    factory: sessionmaker[Session] = request.getfixturevalue(fixture)
    with factory() as session:
        session.info["bypasses_rls"] = fixture != "runtime_sessions"
        yield session
        session.rollback()


@pytest.mark.parametrize(
    ("tenant", "state"), CATEGORIES, ids=lambda v: {0: "own", 1: "other"}.get(v, v)
)
@pytest.mark.parametrize("path", ALL_PATHS)
def test_only_own_live_rows_come_back(
    path: Path, tenant: int, state: str, acting_session: Session, seeded: Seed
) -> None:
    if path.raw and acting_session.info["bypasses_rls"]:
        pytest.skip("raw SQL is guarded by row-level security, which this role bypasses")
    with tenant_context(seeded.tenants[OWN]):
        seen = path.load(acting_session, seeded, tenant, state)
    expected = tenant == OWN and (state == "live" or path.raw)
    assert seen == expected, (
        f"{path.name}: {state} row of {'own' if tenant == OWN else 'other'} tenant"
    )
