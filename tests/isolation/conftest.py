"""One database for the isolation tests: the models, seeded rows of three tenants, two roles.

The tables belong to the server's superuser (standing in for the migration owner); the tests
read and write as ``runtime``, a role created here with LOGIN NOSUPERUSER NOBYPASSRLS that owns
nothing, exactly as the documented two-role set-up prescribes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from pgkeel import create_sessionmaker, tenant_context
from pgkeel.session import install_engine_hooks
from pgkeel.testing.pgbouncer import PgBouncer
from tests.databases import models_database
from tests.databases import runtime_role as runtime_role_url
from tests.isolation.models import Base, Customer, Invoice, Tag, Tenant, customer_tags


@dataclass(repr=False)
class Seed:
    """Ids of the seeded rows: live and deleted rows per tenant, rows planted across tenants."""

    tenants: list[uuid.UUID]
    customers: dict[tuple[int, str], uuid.UUID] = field(default_factory=dict)
    invoices: dict[tuple[int, str], uuid.UUID] = field(default_factory=dict)
    tags: dict[tuple[int, str], uuid.UUID] = field(default_factory=dict)
    # the invoice of tenant i's live customer that points at customer (j, state)
    pointers: dict[tuple[int, int, str], uuid.UUID] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Seed(tenants={[str(t)[:8] for t in self.tenants]})"


STATES = ("live", "deleted")


def seed(session: Session) -> Seed:
    """Three tenants; for each, a live and a deleted customer, invoice and tag.

    Rows are planted across tenants on purpose (as superuser, which no policy stops): invoices and
    tags of every tenant hang off tenant 0's live customer, and every tenant has invoices pointing
    at every customer, so relationship loads meet rows of other tenants and deleted rows on every
    path.
    """
    tenants = [Tenant(name=f"tenant {n}") for n in range(3)]
    session.add_all(tenants)
    session.flush()
    data = Seed([t.id for t in tenants])
    for n, tenant in enumerate(tenants):
        for state in STATES:
            customer = Customer(tenant_id=tenant.id, name=f"c{n}{state}", email=f"{state}@{n}.test")
            tag = Tag(tenant_id=tenant.id, label=f"tag {state}")
            session.add_all([customer, tag])
            session.flush()
            data.customers[n, state] = customer.id
            data.tags[n, state] = tag.id
    for n, tenant in enumerate(tenants):
        for state in STATES:
            invoice = Invoice(
                tenant_id=tenant.id, customer_id=data.customers[0, "live"], number=n * 10
            )
            session.add(invoice)
            session.flush()
            data.invoices[n, state] = invoice.id
            session.execute(
                customer_tags.insert().values(
                    tenant_id=data.tenants[0],
                    customer_id=data.customers[0, "live"],
                    tag_id=data.tags[n, state],
                )
            )
    for owner in range(3):
        for n in range(3):
            for state in STATES:
                pointer = Invoice(
                    tenant_id=data.tenants[owner],
                    customer_id=data.customers[n, state],
                    number=1000 + owner * 100 + n * 10 + STATES.index(state),
                )
                session.add(pointer)
                session.flush()
                data.pointers[owner, n, state] = pointer.id
    for model, ids in ((Customer, data.customers), (Invoice, data.invoices), (Tag, data.tags)):
        for (_n, state), ident in ids.items():
            if state == "deleted":
                session.get_one(model, ident).soft_delete()
    session.commit()
    return data


@pytest.fixture(scope="session")
def isolation_db(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[URL]:
    """A database with the models' tables (created by create_all, as the superuser)."""
    name = f"{pgkeel_database_prefix}_isolation"
    with models_database(pgkeel_server_url, name, Base.metadata) as url:
        yield url


@pytest.fixture(scope="session")
def runtime_role(
    pgkeel_server_url: URL, isolation_db: URL, pgkeel_database_prefix: str
) -> Iterator[str]:
    """A login role that row-level security binds and that owns nothing: the service's role."""
    role = f"{pgkeel_database_prefix}_runtime"
    with runtime_role_url(pgkeel_server_url, isolation_db, role):
        yield role


@pytest.fixture(scope="module")
def single_connection_bouncer(
    pgbouncer_factory: Callable[..., PgBouncer], isolation_db: URL, runtime_role: str
) -> PgBouncer:
    """PgBouncer in transaction mode with one server connection, shared by every client.

    Every client's transaction runs on it: what one client leaves there, the next one meets.
    """
    return pgbouncer_factory(isolation_db, users=[runtime_role], pool_size=1)


@pytest.fixture(scope="session")
def bypass_role(
    pgkeel_server_url: URL, isolation_db: URL, pgkeel_database_prefix: str
) -> Iterator[str]:
    """A login role WITH BYPASSRLS that owns nothing: a system job's role, not a superuser."""
    role = f"{pgkeel_database_prefix}_bypass"
    with runtime_role_url(pgkeel_server_url, isolation_db, role, "BYPASSRLS"):
        yield role


@pytest.fixture(scope="session")
def bypass_engine(isolation_db: URL, bypass_role: str, seeded: Seed) -> Iterator[Engine]:
    engine = create_engine(isolation_db.set(username=bypass_role, password=None))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def owner_engine(isolation_db: URL) -> Iterator[Engine]:
    """The superuser: owns the tables and bypasses row-level security (seeding, checks)."""
    engine = create_engine(isolation_db)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def seeded(owner_engine: Engine) -> Seed:
    with sessionmaker(owner_engine)() as session:
        return seed(session)


@pytest.fixture(scope="session")
def runtime_engine(isolation_db: URL, runtime_role: str, seeded: Seed) -> Iterator[Engine]:
    engine = create_engine(isolation_db.set(username=runtime_role, password=None))
    yield engine
    engine.dispose()


@pytest.fixture
def hooked_runtime_engine(runtime_engine: Engine) -> Engine:
    """The runtime engine with pgkeel's engine hooks, whichever test of a worker comes first."""
    return install_engine_hooks(runtime_engine)


@pytest.fixture(scope="session")
def runtime_sessions(runtime_engine: Engine) -> sessionmaker[Session]:
    return create_sessionmaker(runtime_engine)


@pytest.fixture
def session(runtime_engine: Engine, runtime_sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A runtime-role session whose work, committed or not, is rolled back after the test."""
    with runtime_engine.connect() as connection:
        outer = connection.begin()
        with runtime_sessions(bind=connection, join_transaction_mode="create_savepoint") as s:
            yield s
        outer.rollback()


ROLES = ["runtime", "bypassrls", "superuser"]


@pytest.fixture(params=ROLES)
def role_engine(request: pytest.FixtureRequest) -> Engine:
    """Each of the three roles: subject to row-level security, BYPASSRLS, the superuser owner."""
    name = {"runtime": "runtime_engine", "bypassrls": "bypass_engine", "superuser": "owner_engine"}
    engine: Engine = request.getfixturevalue(name[request.param])
    return engine


@pytest.fixture
def acting(role_engine: Engine, seeded: Seed) -> Iterator[Session]:
    """A hooked session of tenant 0 on the role, rolled back afterwards."""
    with tenant_context(seeded.tenants[0]), create_sessionmaker(role_engine)() as session:
        yield session
        session.rollback()


def stored_row(owner_engine: Engine, table: str, ident: uuid.UUID) -> dict[str, object] | None:
    """A row as stored, read by the owner (no filter, no policy), or None."""
    with owner_engine.connect() as connection:
        row = connection.execute(
            text(f"SELECT * FROM {table} WHERE id = :id"),  # a fixed table name
            {"id": ident},
        ).first()
    return None if row is None else dict(row._mapping)  # public Row API
