"""Same-tenant foreign keys: ``(tenant_id, x_id) -> (parent.tenant_id, parent.id)``.

The database itself refuses a row that points at another tenant's row, on every role: the tests
write as the superuser, whom row-level security does not bind. The models sit on their own base
and in their own database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from sqlalchemy import Engine, ForeignKey, Table, create_engine, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.schema import CreateTable

from alembic_extensions.environment import ALEMBIC_PLUGINS
from alembic_extensions.indexes import uncovered_foreign_keys
from alembic_extensions.registration import PLUGIN_NAME, ensure_registered
from alembic_extensions.rules import check_tables
from pgkeel import (
    ALL_TENANTS,
    ModelDefinitionError,
    SoftDeleteMixin,
    TenantMixin,
    TimestampMixin,
    UUIDPrimaryKeyMixin,
    create_sessionmaker,
    tenant_context,
)
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.tenancy import tenant_foreign_key
from pgkeel.types import TYPE_ANNOTATION_MAP, Str255
from tests.databases import models_database


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer organisation."""

    name: Mapped[Str255]


class Order(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """Defined before the tables it references: their keys are added when they appear."""

    customer_id: Mapped[uuid.UUID]
    project_id: Mapped[uuid.UUID | None]
    number: Mapped[int]
    customer: Mapped[Customer] = relationship(
        back_populates="orders", foreign_keys="Order.customer_id"
    )
    project: Mapped[Project | None] = relationship(foreign_keys="Order.project_id")
    __table_args__ = (
        tenant_foreign_key("customer_id", "customers.id"),
        tenant_foreign_key("project_id", "projects.id", ondelete="CASCADE"),
    )


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """Soft-deleted, referenced: its (tenant_id, id) key covers deleted rows too."""

    name: Mapped[Str255]
    orders: Mapped[list[Order]] = relationship(
        back_populates="customer", foreign_keys="Order.customer_id"
    )


class Project(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    """Referenced by orders and by itself."""

    name: Mapped[Str255]
    parent_id: Mapped[uuid.UUID | None]
    __table_args__ = (tenant_foreign_key("parent_id", "projects.id"),)


def table_of(model: type) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def ddl(model: type) -> str:
    return str(CreateTable(table_of(model)).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]


def index_columns(model: type) -> dict[str, list[str]]:
    return {str(i.name): [c.name for c in i.columns] for i in table_of(model).indexes}


# -- the definition ---------------------------------------------------------------------------


def test_the_foreign_key_includes_tenant_id_and_has_its_index() -> None:
    sql = ddl(Order)
    assert (
        "CONSTRAINT fk_orders_tenant_id_customer_id FOREIGN KEY(tenant_id, customer_id) "
        "REFERENCES customers (tenant_id, id)" in sql
    )
    assert "REFERENCES projects (tenant_id, id) ON DELETE CASCADE" in sql
    indexes = index_columns(Order)
    assert indexes["idx_orders_tenant_id_customer_id"] == ["tenant_id", "customer_id"]
    assert indexes["idx_orders_tenant_id_project_id"] == ["tenant_id", "project_id"]


def test_the_referenced_tables_get_a_key_over_all_rows() -> None:
    assert "CONSTRAINT uq_customers_tenant_id_id UNIQUE (tenant_id, id)" in ddl(Customer)
    assert "CONSTRAINT uq_projects_tenant_id_id UNIQUE (tenant_id, id)" in ddl(Project)
    assert "REFERENCES projects (tenant_id, id)" in ddl(Project)  # itself
    # the key serves tenant_id's own foreign key: no separate index on tenant_id alone
    assert "idx_projects_tenant_id" not in index_columns(Project)
    assert Base.metadata.info["pgkeel_pending_tenant_keys"] == {}


def test_the_alembic_rules_and_foreign_key_indexes_are_satisfied() -> None:
    tables = Base.metadata.sorted_tables
    assert check_tables(tables) == []
    assert [fk.name for t in tables for fk in uncovered_foreign_keys(t)] == []


def test_a_key_on_a_table_defined_earlier_is_added_at_once() -> None:
    class Local(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP

    class Folder(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Local):
        __tenant_foreign_key__ = None

    assert "uq_folders_tenant_id_id" not in ddl(Folder)

    class Document(UUIDPrimaryKeyMixin, TenantMixin, Local):
        __tenant_foreign_key__ = None
        folder_id: Mapped[uuid.UUID]
        __table_args__ = (tenant_foreign_key("folder_id", "folders.id"),)

    assert "CONSTRAINT uq_folders_tenant_id_id UNIQUE (tenant_id, id)" in ddl(Folder)
    assert "REFERENCES folders (tenant_id, id)" in ddl(Document)
    Local.registry.dispose()


@pytest.mark.parametrize("ondelete", ["SET NULL", "set default"])
def test_an_ondelete_that_would_change_tenant_id_is_refused(ondelete: str) -> None:
    with pytest.raises(ValueError, match="CASCADE, RESTRICT, NO ACTION"):
        tenant_foreign_key("customer_id", "customers.id", ondelete=ondelete)  # type: ignore[arg-type]


def test_a_target_without_a_table_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'customers\.id'"):
        tenant_foreign_key("customer_id", "id")


def test_referencing_a_table_without_tenant_id_is_refused() -> None:
    class Local(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP

    class Country(UUIDPrimaryKeyMixin, Local):
        name: Mapped[Str255]

    with pytest.raises(ModelDefinitionError, match="'countries' has no tenant_id"):

        class Address(UUIDPrimaryKeyMixin, TenantMixin, Local):
            __tenant_foreign_key__ = None
            country_id: Mapped[uuid.UUID]
            __table_args__ = (tenant_foreign_key("country_id", "countries.id"),)

    Local.registry.dispose()


def test_a_plain_foreign_key_on_the_same_column_is_refused() -> None:
    class Local(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP

    class Shelf(UUIDPrimaryKeyMixin, TenantMixin, Local):
        __tenant_foreign_key__ = None

    with pytest.raises(ModelDefinitionError, match=r"ForeignKey\('shelves.id'\)"):

        class Book(UUIDPrimaryKeyMixin, TenantMixin, Local):
            __tenant_foreign_key__ = None
            shelf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shelves.id"))
            __table_args__ = (tenant_foreign_key("shelf_id", "shelves.id"),)

    Local.registry.dispose()


def test_a_relationship_that_would_write_tenant_id_is_refused() -> None:
    class Local(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP

    class Board(UUIDPrimaryKeyMixin, TenantMixin, Local):
        __tenant_foreign_key__ = None

    class Card(UUIDPrimaryKeyMixin, TenantMixin, Local):
        __tenant_foreign_key__ = None
        board_id: Mapped[uuid.UUID]
        board: Mapped[Board] = relationship()
        __table_args__ = (tenant_foreign_key("board_id", "boards.id"),)

    try:
        with pytest.raises(ModelDefinitionError) as caught:
            Local.registry.configure()
        assert "Card.board" in str(caught.value)
        assert "foreign_keys=['Card.board_id']" in str(caught.value)
    finally:
        Local.registry.dispose()


# -- the database -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[Engine]:
    """A database with the models' tables, as the server's superuser (no row-level security)."""
    name = f"{pgkeel_database_prefix}_tenant_fk"
    with models_database(pgkeel_server_url, name, Base.metadata) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A superuser session whose work is rolled back after the test."""
    with engine.connect() as connection:
        outer = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as rolled_back:
            yield rolled_back
        outer.rollback()


def two_tenants(session: Session) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Two tenants with one customer each: their ids and the customers' ids."""
    tenants = [uuid.uuid4(), uuid.uuid4()]
    customers = [uuid.uuid4(), uuid.uuid4()]
    session.execute(insert(Tenant), [{"id": t, "name": str(t)} for t in tenants])
    session.execute(
        insert(Customer),
        [{"id": c, "tenant_id": t, "name": "c"} for t, c in zip(tenants, customers, strict=True)],
    )
    return tenants, customers


def test_the_superuser_bypasses_row_level_security(session: Session) -> None:
    bypass = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    assert session.execute(text(bypass)).scalar() is True


def test_a_reference_within_the_tenant_is_accepted(session: Session) -> None:
    tenants, customers = two_tenants(session)
    session.execute(insert(Order).values(tenant_id=tenants[0], customer_id=customers[0], number=1))
    assert session.scalar(select(Order.customer_id)) == customers[0]


def test_a_reference_to_another_tenant_is_rejected_by_the_database(session: Session) -> None:
    tenants, customers = two_tenants(session)
    with (
        pytest.raises(IntegrityError, match="fk_orders_tenant_id_customer_id"),
        session.begin_nested(),
    ):
        session.execute(
            insert(Order).values(tenant_id=tenants[1], customer_id=customers[0], number=1)
        )
    session.execute(insert(Order).values(tenant_id=tenants[0], customer_id=customers[0], number=2))
    for change in ({"tenant_id": tenants[1]}, {"customer_id": customers[1]}):
        with (
            pytest.raises(IntegrityError, match="fk_orders_tenant_id_customer_id"),
            session.begin_nested(),
        ):
            session.execute(update(Order).values(change))


def test_a_referenced_row_cannot_move_to_another_tenant(session: Session) -> None:
    tenants, customers = two_tenants(session)
    session.execute(insert(Order).values(tenant_id=tenants[0], customer_id=customers[0], number=1))
    with (
        pytest.raises(IntegrityError, match="fk_orders_tenant_id_customer_id"),
        session.begin_nested(),
    ):
        session.execute(
            update(Customer).where(Customer.id == customers[0]).values(tenant_id=tenants[1])
        )


def test_a_self_reference_stays_within_the_tenant(session: Session) -> None:
    tenants, _ = two_tenants(session)
    root = uuid.uuid4()
    session.execute(insert(Project).values(id=root, tenant_id=tenants[0], name="root"))
    session.execute(insert(Project).values(tenant_id=tenants[0], parent_id=root, name="child"))
    with (
        pytest.raises(IntegrityError, match="fk_projects_tenant_id_parent_id"),
        session.begin_nested(),
    ):
        session.execute(insert(Project).values(tenant_id=tenants[1], parent_id=root, name="stray"))


def test_orm_relationships_use_the_reference_column(engine: Engine) -> None:
    sessions = create_sessionmaker(engine)
    with sessions() as session, tenant_context(ALL_TENANTS):  # the superuser bypasses RLS
        tenants, customers = two_tenants(session)
        mine = session.get_one(Customer, customers[0])
        order = Order(tenant_id=tenants[0], customer=mine, number=1)
        session.add(order)
        session.flush()
        assert order.customer_id == customers[0]
        session.expire_all()
        assert [o.number for o in session.get_one(Customer, customers[0]).orders] == [1]
        stray = Order(tenant_id=tenants[1], customer=session.get_one(Customer, customers[0]))
        stray.number = 2
        session.add(stray)
        with pytest.raises(IntegrityError, match="fk_orders_tenant_id_customer_id"):
            session.flush()
        session.rollback()


def test_autogenerate_finds_no_key_or_index_to_change_after_create_all(engine: Engine) -> None:
    """The names, keys and indexes create_all made are exactly the ones migrations would make.

    Policies are left out: create_all does not stamp the fingerprint comment by which the
    plugin recognises a policy it wrote, so it rewrites them once.
    """
    ensure_registered()
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "target_metadata": Base.metadata,
                "autogenerate_plugins": [*ALEMBIC_PLUGINS, PLUGIN_NAME],
                "compare_type": True,
            },
        )
        upgrade = produce_migrations(context, Base.metadata).upgrade_ops
    assert upgrade is not None
    diffs = [diff for diff in upgrade.as_diffs() if not str(diff[0]).endswith("_policy")]
    assert diffs == []
