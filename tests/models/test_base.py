"""What a model class gets from the base, and what it is refused, at class definition."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

import pytest
from sqlalchemy import (
    TIMESTAMP,
    Boolean,
    CheckConstraint,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

import pgkeel
from pgkeel import (
    BaseModel,
    ModelDefinitionError,
    NamingError,
    Str255,
    TimestampMixin,
    UUIDPrimaryKeyMixin,
    VersionedMixin,
)
from pgkeel.dbobjects import Trigger, required_by
from pgkeel.naming import allow

from .conftest import isolated_base

LONG_ASCII = "x" * 64
LONG_UTF8 = "größe_" * 9  # 54 characters but 63 + 9 = 72 bytes


def test_base_is_abstract_and_shared() -> None:
    assert BaseModel.__abstract__
    assert pgkeel.Base.metadata.naming_convention["pk"] == "%(pgkeel_pk)s"
    assert issubclass(BaseModel, pgkeel.Base)


def test_an_isolated_base_gets_its_own_metadata_with_the_convention() -> None:
    first, second = isolated_base(), isolated_base()
    assert first.metadata is not second.metadata
    assert first.metadata is not pgkeel.Base.metadata
    assert first.metadata.naming_convention == pgkeel.Base.metadata.naming_convention


def test_table_name_is_derived_and_an_explicit_one_wins(base: type[DeclarativeBase]) -> None:
    class WorkflowStep(UUIDPrimaryKeyMixin, base):
        pass

    class Person(UUIDPrimaryKeyMixin, base):
        pass

    class Category(UUIDPrimaryKeyMixin, base):
        __tablename__ = "product_category"

    assert WorkflowStep.__table__.name == "workflow_steps"
    assert Person.__table__.name == "people"
    assert Category.__table__.name == "product_category"


def test_single_table_inheritance_keeps_the_parent_table(base: type[DeclarativeBase]) -> None:
    class Vehicle(UUIDPrimaryKeyMixin, TimestampMixin, base):
        kind: Mapped[str]
        __mapper_args__: ClassVar[dict[str, Any]] = {
            "polymorphic_on": "kind",
            "polymorphic_identity": "vehicle",
        }

    class Truck(Vehicle):
        payload_kg: Mapped[int | None]
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "truck"}

    assert Truck.__table__ is Vehicle.__table__
    assert set(base.metadata.tables) == {"vehicles"}
    # pgkeel's mapper arguments are kept next to the model's own.
    assert Vehicle.__mapper__.eager_defaults is True
    assert Truck.__mapper__.polymorphic_identity == "truck"


def test_joined_inheritance_puts_the_trigger_where_the_timestamps_are(
    base: type[DeclarativeBase],
) -> None:
    class Document(UUIDPrimaryKeyMixin, TimestampMixin, VersionedMixin, base):
        kind: Mapped[str]
        __mapper_args__: ClassVar[dict[str, Any]] = {
            "polymorphic_on": "kind",
            "polymorphic_identity": "document",
        }

    class Contract(Document):
        __tablename__ = "contracts"
        id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), primary_key=True)
        __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "contract"}

    assert [type(obj) for obj in required_by(Contract.__table__)] == []
    assert Trigger in {type(obj) for obj in required_by(Document.__table__)}
    assert Contract.__mapper__.version_id_col is Document.__table__.c.version


def test_docstring_and_column_comments_reach_the_catalog(
    base: type[DeclarativeBase], connection: Connection
) -> None:
    class Supplier(UUIDPrimaryKeyMixin, TimestampMixin, base):
        """Companies we buy from.

        One row per legal entity.
        """

        name: Mapped[Str255] = mapped_column(comment="Registered company name.")
        note: Mapped[str | None]

    base.metadata.create_all(connection)
    table_comment = connection.execute(
        text("select obj_description('suppliers'::regclass, 'pg_class')")
    ).scalar()
    column_comments = dict(
        connection.execute(
            text(
                "select attname, col_description(attrelid, attnum) from pg_attribute "
                "where attrelid = 'suppliers'::regclass and attnum > 0"
            )
        ).all()
    )
    assert table_comment == "Companies we buy from.\n\nOne row per legal entity."
    assert column_comments["name"] == "Registered company name."
    assert column_comments["note"] is None
    assert column_comments["id"].startswith("Primary key: UUIDv7")
    assert Supplier.__table__.comment == table_comment


def test_a_table_without_docstring_has_no_comment(base: type[DeclarativeBase]) -> None:
    class Plain(UUIDPrimaryKeyMixin, base):
        pass

    assert Plain.__table__.comment is None


def test_the_type_map_in_the_catalog(base: type[DeclarativeBase], connection: Connection) -> None:
    class Shipment(base):
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
        shipped_at: Mapped[datetime]
        due_on: Mapped[date]
        label: Mapped[dict[str, Any]]
        attributes: Mapped[dict]
        stops: Mapped[list[Any]]
        tags: Mapped[list[str]]
        dimensions: Mapped[dict[str, float]]
        price: Mapped[Decimal]
        carrier: Mapped[Str255]
        note: Mapped[str]
        count: Mapped[int]
        fragile: Mapped[bool]

    base.metadata.create_all(connection)
    types = dict(
        connection.execute(
            text(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = 'shipments'::regclass and attnum > 0"
            )
        ).all()
    )
    assert types == {
        "id": "uuid",
        "shipped_at": "timestamp with time zone",
        "due_on": "date",
        "label": "jsonb",
        "attributes": "jsonb",
        "stops": "jsonb",
        "tags": "jsonb",
        "dimensions": "jsonb",
        "price": "numeric",
        "carrier": "character varying(255)",
        "note": "text",
        "count": "integer",
        "fragile": "boolean",
    }


def test_basemodel_columns_in_the_catalog(connection: Connection) -> None:
    class ModelsBaseInvoice(BaseModel):
        amount: Mapped[Decimal]

    pgkeel.Base.metadata.create_all(connection, tables=[ModelsBaseInvoice.__table__])
    rows = connection.execute(
        text(
            "select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) from pg_attribute a left join pg_attrdef d "
            "on d.adrelid = a.attrelid and d.adnum = a.attnum "
            "where a.attrelid = 'models_base_invoices'::regclass and a.attnum > 0 "
            "order by a.attnum"
        )
    ).all()
    assert [tuple(row) for row in rows] == [
        ("id", "uuid", True, "gen_random_uuid()"),
        ("amount", "numeric", True, None),
        ("created_at", "timestamp with time zone", True, "now()"),
        ("updated_at", "timestamp with time zone", True, "now()"),
    ]


def test_a_column_name_over_63_bytes_is_refused(base: type[DeclarativeBase]) -> None:
    with pytest.raises(NamingError) as caught:

        class Order(UUIDPrimaryKeyMixin, base):
            size: Mapped[int] = mapped_column(LONG_UTF8)

    message = str(caught.value)
    assert f"Column name in table 'orders': {LONG_UTF8!r} is 72 bytes long" in message
    assert "limit is 63 bytes" in message
    assert "silently cut" in message
    assert "test_base.test_a_column_name_over_63_bytes_is_refused.<locals>.Order" in message
    assert "mapped_column('short_name', ...)" in message
    assert "orders" not in base.metadata.tables  # nothing half-defined is left to create_all


def test_a_table_name_over_63_bytes_is_refused(base: type[DeclarativeBase]) -> None:
    with pytest.raises(NamingError, match=r"Table name 'x{64}' is 64 bytes long.*limit is 63"):

        class Order(UUIDPrimaryKeyMixin, base):
            __tablename__ = LONG_ASCII


@pytest.mark.parametrize(
    "constraint",
    [
        UniqueConstraint("code", name=LONG_ASCII),
        Index(LONG_ASCII, "code"),
        CheckConstraint("code <> ''", name=LONG_ASCII),
    ],
    ids=["unique", "index", "check"],
)
def test_an_explicit_constraint_name_over_63_bytes_is_refused(
    base: type[DeclarativeBase], constraint: Any
) -> None:
    with pytest.raises(NamingError) as caught:

        class Coupon(UUIDPrimaryKeyMixin, base):
            code: Mapped[str]
            __table_args__ = (constraint,)

    message = str(caught.value)
    assert f"name in table 'coupons': {LONG_ASCII!r} is 64 bytes long" in message
    assert "limit is 63 bytes" in message
    assert "Coupon" in message


def test_a_check_constraint_needs_a_name(base: type[DeclarativeBase]) -> None:
    with pytest.raises(NamingError, match=r"CHECK constraint on table 'coupons' has no name"):

        class Coupon(UUIDPrimaryKeyMixin, base):
            code: Mapped[str]
            __table_args__ = (CheckConstraint("code <> ''"),)


def test_a_type_made_check_constraint_needs_a_name(base: type[DeclarativeBase]) -> None:
    with pytest.raises(NamingError, match=r"CHECK constraint a type creates on \(active\)"):

        class Coupon(UUIDPrimaryKeyMixin, base):
            active: Mapped[bool] = mapped_column(Boolean(create_constraint=True))

    class Voucher(UUIDPrimaryKeyMixin, base):
        active: Mapped[bool] = mapped_column(Boolean(create_constraint=True, name="active"))

    assert "chk_vouchers_active" in {c.name for c in Voucher.__table__.constraints}


@pytest.mark.parametrize(
    "naive",
    [DateTime(), DateTime(timezone=False), TIMESTAMP()],
    ids=["DateTime", "DateTime(timezone=False)", "TIMESTAMP"],
)
def test_a_naive_timestamp_is_refused(base: type[DeclarativeBase], naive: Any) -> None:
    with pytest.raises(ModelDefinitionError) as caught:

        class Meeting(UUIDPrimaryKeyMixin, base):
            starts_at: Mapped[datetime] = mapped_column(naive)

    message = str(caught.value)
    assert "Column meetings.starts_at is a timestamp without time zone" in message
    assert "Mapped[datetime]" in message
    assert "allow('timestamptz')" in message
    assert "meetings" not in base.metadata.tables


NaiveStamp = Annotated[datetime, mapped_column(DateTime())]


def test_a_naive_timestamp_by_annotated_alias_is_refused(base: type[DeclarativeBase]) -> None:
    with pytest.raises(ModelDefinitionError, match=r"meetings\.starts_at"):

        class Meeting(UUIDPrimaryKeyMixin, base):
            starts_at: Mapped[NaiveStamp]


def test_a_naive_timestamp_can_opt_out(base: type[DeclarativeBase]) -> None:
    class LegacyEvent(UUIDPrimaryKeyMixin, base):
        logged_at: Mapped[datetime] = mapped_column(DateTime(), info=allow("timestamptz"))

    assert LegacyEvent.__table__.c.logged_at.type.timezone is False


class IntegerKeyMixin:
    id: Mapped[int] = mapped_column(primary_key=True)


def test_two_mixins_with_an_id_column_are_refused(base: type[DeclarativeBase]) -> None:
    with pytest.raises(ModelDefinitionError) as caught:

        class Ticket(IntegerKeyMixin, UUIDPrimaryKeyMixin, base):
            pass

    message = str(caught.value)
    assert "column 'id' is defined by both IntegerKeyMixin and UUIDPrimaryKeyMixin" in message
    assert "only IntegerKeyMixin's would be used, silently" in message
    assert "define 'id' on Ticket itself" in message


def test_the_collision_is_found_through_basemodel() -> None:
    class CreatedByHandMixin:
        @declared_attr
        def created_at(cls) -> Mapped[datetime]:  # noqa: N805
            return mapped_column()

    with pytest.raises(ModelDefinitionError, match="'created_at' is defined by both"):

        class ModelsBaseTicket(BaseModel, CreatedByHandMixin):
            pass

    assert "models_base_tickets" not in pgkeel.Base.metadata.tables


def test_an_override_on_the_model_itself_is_not_a_collision(base: type[DeclarativeBase]) -> None:
    class Ticket(IntegerKeyMixin, UUIDPrimaryKeyMixin, base):
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True)

    assert str(Ticket.__table__.c.id.type) == "UUID"


def test_a_subclass_overriding_a_mixin_column_is_not_a_collision(
    base: type[DeclarativeBase],
) -> None:
    class ShortIdMixin(UUIDPrimaryKeyMixin):
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True, comment="Short.")

    class Ticket(ShortIdMixin, base):
        pass

    assert Ticket.__table__.c.id.comment == "Short."


def test_two_objects_with_one_name_are_refused(base: type[DeclarativeBase]) -> None:
    with pytest.raises(NamingError) as caught:

        class Route(UUIDPrimaryKeyMixin, base):
            a_b: Mapped[int] = mapped_column(index=True)
            a: Mapped[int]
            b: Mapped[int]
            __table_args__ = (Index(None, "a", "b"),)

    message = str(caught.value)
    assert "index on (a_b)" in message
    assert "index on (a, b)" in message
    assert "'idx_routes_a_b'" in message
    assert "give one of them an explicit name" in message
    assert "routes" not in base.metadata.tables


def test_two_tables_whose_index_names_meet_are_refused(base: type[DeclarativeBase]) -> None:
    class Order(UUIDPrimaryKeyMixin, base):
        items_sku: Mapped[str] = mapped_column(index=True)

    with pytest.raises(NamingError) as caught:

        class OrderItem(UUIDPrimaryKeyMixin, base):
            __tablename__ = "orders_items"
            sku: Mapped[str] = mapped_column(index=True)

    message = str(caught.value)
    assert "'idx_orders_items_sku'" in message
    assert "of table 'orders'" in message
    assert "of table 'orders_items'" in message
    assert "one namespace per schema" in message
    assert set(base.metadata.tables) == {"orders"}


def test_a_refused_class_can_be_fixed_and_defined_again(base: type[DeclarativeBase]) -> None:
    with pytest.raises(NamingError):

        class Account(UUIDPrimaryKeyMixin, base):
            login: Mapped[str] = mapped_column(LONG_ASCII)

    class Account2(UUIDPrimaryKeyMixin, base):
        __tablename__ = "accounts"
        login: Mapped[str]

    assert base.metadata.tables["accounts"] is Account2.__table__


def test_user_mapper_args_merge_with_pgkeel_ones(base: type[DeclarativeBase]) -> None:
    class Counter(UUIDPrimaryKeyMixin, TimestampMixin, VersionedMixin, base):
        __mapper_args__: ClassVar[dict[str, Any]] = {"confirm_deleted_rows": False}

    mapper = Counter.__mapper__
    assert mapper.eager_defaults is True
    assert mapper.version_id_col is Counter.__table__.c.version
    assert mapper.confirm_deleted_rows is False


def test_each_mixin_works_alone(base: type[DeclarativeBase]) -> None:
    class OnlyTimestamps(TimestampMixin, base):
        __tablename__ = "only_timestamps"
        code: Mapped[str] = mapped_column(primary_key=True)

    class OnlyVersion(VersionedMixin, base):
        __tablename__ = "only_versions"
        code: Mapped[str] = mapped_column(primary_key=True)

    assert set(OnlyTimestamps.__table__.c.keys()) == {"code", "created_at", "updated_at"}
    assert set(OnlyVersion.__table__.c.keys()) == {"code", "version"}
    assert OnlyVersion.__mapper__.version_id_col is OnlyVersion.__table__.c.version
