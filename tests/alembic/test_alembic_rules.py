"""The model rules: each has a failing model and a message that says where, what, fix, opt-out."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable

import pytest
from alembic_project import Project
from sqlalchemy import (
    JSON,
    UUID,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Interval,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alembic_extensions.errors import ModelRulesError
from alembic_extensions.rules import RULE_IDS, RULES, Violation, check_tables
from pgkeel import SoftDeleteMixin, TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.dbobjects import RowLevelSecurity, attach
from pgkeel.errors import UnknownRuleError
from pgkeel.naming import allow
from pgkeel.tenancy import tenant_foreign_key, tenant_policy
from pgkeel.types import TYPE_ANNOTATION_MAP

MakeProject = Callable[[str], Project]


def standard_columns() -> list[Column[object]]:
    """A uuid key and both timestamps: a table that breaks no rule by itself."""
    return [
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    ]


def violations(*columns: object, name: str = "widgets", **kw: object) -> list[Violation]:
    table = Table(name, MetaData(), *standard_columns(), *columns, **kw)  # type: ignore[arg-type]
    return check_tables([table])


def only(found: list[Violation]) -> Violation:
    assert len(found) == 1, found
    return found[0]


def test_a_standard_table_passes() -> None:
    assert violations(Column("name", Text())) == []


def test_timestamptz() -> None:
    found = only(violations(Column("shipped_at", DateTime())))
    assert found.rule == "timestamptz"
    assert found.where == "widgets.shipped_at"
    assert "timestamp without time zone" in found.problem
    assert "DateTime(timezone=True)" in found.fix
    assert found.opt_out == "mapped_column(..., info=pgkeel.naming.allow('timestamptz'))"
    assert violations(Column("shipped_at", DateTime(), info=allow("timestamptz"))) == []


def test_uuid_primary_key() -> None:
    table = Table(
        "gadgets",
        MetaData(),
        Column("id", BigInteger, primary_key=True),
        *standard_columns()[1:],
    )
    found = only(check_tables([table]))
    assert (found.rule, found.where) == ("uuid-primary-key", "gadgets.id")
    assert "integer primary key (BIGINT)" in found.problem
    assert "UUIDPrimaryKeyMixin" in found.fix
    allowed = Table(
        "gizmos",
        MetaData(),
        Column("id", Integer, primary_key=True, info=allow("uuid-primary-key")),
        *standard_columns()[1:],
    )
    assert check_tables([allowed]) == []


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("widget", "'widgets'"),
        ("order_item", "'order_items'"),
        ("OrderItems", None),
        ("event_2024", "'events_2024'"),
    ],
)
def test_plural_table_name(name: str, suggestion: str | None) -> None:
    found = only(violations(name=name))
    assert (found.rule, found.where) == ("plural-table-name", name)
    assert "not plural snake_case" in found.problem
    if suggestion:
        assert f"name it like {suggestion}" in found.fix
    assert found.opt_out == "__table_args__ = {'info': pgkeel.naming.allow('plural-table-name')}"
    assert violations(name=name, info=allow("plural-table-name")) == []


def test_plural_names_may_end_with_a_number() -> None:
    assert violations(name="events_2024") == []


def test_snake_case_column() -> None:
    found = only(violations(Column("unitPrice", Text())))
    assert (found.rule, found.where) == ("snake-case-column", "widgets.unitPrice")
    assert "mapped_column('snake_name')" in found.fix
    assert violations(Column("unitPrice", Text(), info=allow("snake-case-column"))) == []


def test_identifier_length() -> None:
    long_name = "a_column_name_that_goes_on_and_on_well_past_what_postgres_keeps_x"
    found = only(violations(Column(long_name, Text())))
    assert (found.rule, found.where) == ("identifier-length", f"widgets.{long_name}")
    assert "is 65 bytes; PostgreSQL keeps 63 bytes" in found.problem
    assert violations(Column(long_name, Text(), info=allow("identifier-length"))) == []


def test_jsonb() -> None:
    found = only(violations(Column("payload", JSON())))
    assert (found.rule, found.where) == ("jsonb", "widgets.payload")
    assert "json column" in found.problem
    assert "JSONB" in found.fix
    assert violations(Column("payload", JSONB())) == []
    assert violations(Column("payload", JSON(), info=allow("jsonb"))) == []


def test_timestamps() -> None:
    table = Table("widgets", MetaData(), *standard_columns()[:2])
    found = only(check_tables([table]))
    assert (found.rule, found.where) == ("timestamps", "widgets")
    assert found.problem == "no updated_at column."
    assert "TimestampMixin" in found.fix
    bare = Table("links", MetaData(), standard_columns()[0], info=allow("timestamps"))
    assert check_tables([bare]) == []


def tenant_table(*items: object, rls: bool = True, **kw: object) -> Table:
    table = Table(
        "invoices",
        MetaData(),
        *standard_columns(),
        Column("tenant_id", UUID(as_uuid=True), nullable=False),
        Column("number", Text()),
        Column("customer_id", UUID(as_uuid=True), ForeignKey("customers.id")),
        *items,
        **kw,  # type: ignore[arg-type]
    )
    if rls:
        attach(table, RowLevelSecurity("invoices"), tenant_policy(table))
    return table


def test_tenant_leading_column() -> None:
    found = check_tables([tenant_table(UniqueConstraint("number", name="uq_invoices_number"))])
    assert [(v.rule, v.where) for v in found] == [
        ("tenant-leading-column", "invoices (unique constraint uq_invoices_number on number)")
    ]
    assert "put tenant_id first" in found[0].fix
    assert "UniqueConstraint(..., info=pgkeel.naming.allow" in found[0].opt_out
    fine = [
        Index("idx_invoices_tenant_id_number", "tenant_id", "number"),
        Index("idx_invoices_customer_id", "customer_id"),  # covers a foreign key: exempt
        Index("idx_invoices_number", "number", info=allow("tenant-leading-column")),
    ]
    assert check_tables([tenant_table(*fine)]) == []


def test_tenant_rls() -> None:
    found = only(check_tables([tenant_table(rls=False)]))
    assert (found.rule, found.where) == ("tenant-rls", "invoices")
    assert "tenant table without row-level security" in found.problem
    assert "TenantMixin" in found.fix
    assert check_tables([tenant_table(rls=False, info=allow("tenant-rls"))]) == []


def _customers_and_invoices(reference: Column[object] | object) -> list[Table]:
    metadata = MetaData()
    tenant_id = Column("tenant_id", UUID(as_uuid=True), nullable=False)
    customers = Table(
        "customers",
        metadata,
        *standard_columns(),
        tenant_id,
        UniqueConstraint("tenant_id", "id", name="uq_customers_tenant_id_id"),
    )
    invoices = Table(
        "invoices",
        metadata,
        *standard_columns(),
        Column("tenant_id", UUID(as_uuid=True), nullable=False),
        reference,
    )
    for table in (customers, invoices):
        attach(table, RowLevelSecurity(table.name), tenant_policy(table))
    return [customers, invoices]


def test_tenant_foreign_key() -> None:
    plain = Column("customer_id", UUID(as_uuid=True), ForeignKey("customers.id"))
    found = only(check_tables(_customers_and_invoices(plain)))
    assert (found.rule, found.where) == (
        "tenant-foreign-key",
        "invoices.customer_id -> customers.id",
    )
    assert "foreign-key checks bypass row-level security" in found.problem
    assert "pgkeel.tenancy.tenant_foreign_key('customer_id', 'customers.id')" in found.fix
    assert "pgkeel.naming.allow('tenant-foreign-key')" in found.opt_out
    opted_out = Column(
        "customer_id",
        UUID(as_uuid=True),
        ForeignKey("customers.id"),
        info=allow("tenant-foreign-key"),
    )
    assert check_tables(_customers_and_invoices(opted_out)) == []


def test_a_same_tenant_foreign_key_passes() -> None:
    tables = _customers_and_invoices(Column("customer_id", UUID(as_uuid=True)))
    tables[1].append_constraint(tenant_foreign_key("customer_id", "customers.id"))
    assert check_tables(tables) == []


def test_a_reference_to_a_shared_table_passes() -> None:
    metadata = MetaData()
    Table("plans", metadata, *standard_columns())
    invoices = Table(
        "invoices",
        metadata,
        *standard_columns(),
        Column("tenant_id", UUID(as_uuid=True), nullable=False),
        Column("plan_id", UUID(as_uuid=True), ForeignKey("plans.id")),
    )
    attach(invoices, RowLevelSecurity("invoices"), tenant_policy(invoices))
    assert check_tables(metadata.sorted_tables) == []


def _countries_and_addresses(*, all_rows: bool = False) -> list[Table]:
    """Soft-deleted countries known by code, and addresses that reference the code."""

    class Base(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map = TYPE_ANNOTATION_MAP

    class Country(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
        __tablename__ = "countries"
        __table_args__ = (
            UniqueConstraint("code", info=allow("all-rows-unique") if all_rows else {}),
        )
        code: Mapped[str]

    class Address(UUIDPrimaryKeyMixin, TimestampMixin, Base):
        country_code: Mapped[str] = mapped_column(ForeignKey("countries.code"))
        street: Mapped[str] = mapped_column(ForeignKey("streets.name"))

    Table("streets", Base.metadata, *standard_columns(), Column("name", Text()))
    return Base.metadata.sorted_tables


def test_foreign_key_target() -> None:
    found = check_tables(_countries_and_addresses())
    assert [(v.rule, v.where) for v in found] == [
        ("foreign-key-target", "addresses.country_code -> countries.code"),
        ("foreign-key-target", "addresses.street -> streets.name"),
    ]
    live_only, no_rule = found
    assert "covers live rows only (WHERE deleted_at IS NULL)" in live_only.problem
    assert "PostgreSQL refuses a foreign key" in live_only.problem
    assert "pgkeel.naming.allow('all-rows-unique')" in live_only.fix
    assert "no unique rule on exactly (name)" in no_rule.problem
    assert "pgkeel.naming.allow('foreign-key-target')" in live_only.opt_out
    kept = check_tables(_countries_and_addresses(all_rows=True))
    assert [v.where for v in kept] == ["addresses.street -> streets.name"]


def test_the_mixins_meet_every_rule() -> None:
    class Base(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map = TYPE_ANNOTATION_MAP

    class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
        name: Mapped[str]

    class Invoice(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
        customer: Mapped[uuid.UUID | None]

    assert check_tables(Base.metadata.sorted_tables) == []


class Stamp(TypeDecorator[datetime.datetime]):
    """A project's own timestamp type: the rules read the type it wraps."""

    impl = DateTime
    cache_ok = True


class Document(TypeDecorator[object]):
    impl = JSON
    cache_ok = True


class BinaryDocument(TypeDecorator[object]):
    impl = JSONB
    cache_ok = True


def test_column_rules_read_the_type_a_type_decorator_wraps() -> None:
    found = violations(
        Column("seen_at", Stamp()),
        Column("kept_at", Stamp(timezone=True)),
        Column("every", Interval()),  # a duration, though SQLAlchemy wraps a DateTime
        Column("body", Document()),
        Column("doc", BinaryDocument()),
    )
    assert [(v.rule, v.where) for v in found] == [
        ("timestamptz", "widgets.seen_at"),
        ("jsonb", "widgets.body"),
    ]


def test_violations_come_rule_by_rule_then_column_by_column() -> None:
    found = violations(
        Column("dataB", JSON()),
        Column("seenAt", DateTime()),
        Column("dataA", JSON()),
        Column("doneAt", DateTime()),
    )
    assert [(v.rule, v.where) for v in found] == [
        ("snake-case-column", "widgets.dataB"),
        ("snake-case-column", "widgets.seenAt"),
        ("snake-case-column", "widgets.dataA"),
        ("snake-case-column", "widgets.doneAt"),
        ("timestamptz", "widgets.seenAt"),
        ("timestamptz", "widgets.doneAt"),
        ("jsonb", "widgets.dataB"),
        ("jsonb", "widgets.dataA"),
    ]


def test_identifier_length_counts_bytes_and_reads_every_named_item() -> None:
    accented = "\u00e9" * 32  # 32 characters, 64 bytes
    long_index = "idx_widgets_" + "n" * 52  # 64 characters
    found = violations(Column(accented, Text()), Column("name", Text()), Index(long_index, "name"))
    assert [(v.rule, v.where) for v in found] == [
        ("identifier-length", f"widgets.{accented}"),
        ("identifier-length", f"widgets (Index {long_index})"),
        ("snake-case-column", f"widgets.{accented}"),
    ]
    assert f"{accented!r} is 64 bytes" in found[0].problem


def test_a_name_sqlalchemy_shortens_itself_is_no_violation() -> None:
    convention = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
    long_column = "c" * 60
    table = Table(
        "widgets",
        MetaData(naming_convention=convention),
        *standard_columns(),
        Column(long_column, Text()),
        UniqueConstraint(long_column),
    )
    assert check_tables([table]) == []


def test_foreign_keys_are_reported_in_the_order_of_their_columns() -> None:
    metadata = MetaData()
    Table("parts", metadata, *standard_columns(), Column("code", Text()), Column("serial", Text()))
    table = Table(
        "widgets",
        metadata,
        *standard_columns(),
        Column("serial_ref", Text(), ForeignKey("parts.serial")),
        Column("code_ref", Text(), ForeignKey("parts.code")),
        Column("part_id", UUID(as_uuid=True), ForeignKey("parts.id")),  # the primary key: fine
    )
    assert [v.where for v in check_tables([table])] == [
        "widgets.code_ref -> parts.code",
        "widgets.serial_ref -> parts.serial",
    ]


def test_the_opt_outs_of_a_table_and_a_foreign_key_are_checked_table_first() -> None:
    typo = {"pgkeel_allow": {"jsnob"}}
    reference = Column("gadget_id", UUID(as_uuid=True), ForeignKey("gadgets.id", info=typo))
    with pytest.raises(UnknownRuleError, match=r"pgkeel_allow of foreign key widgets\.gadget_id"):
        violations(reference)
    reference = Column("gadget_id", UUID(as_uuid=True), ForeignKey("gadgets.id", info=typo))
    with pytest.raises(UnknownRuleError, match=r"pgkeel_allow of table widgets:"):
        violations(reference, info=typo)


def test_every_rule_id_is_documented_by_a_test() -> None:
    names = {
        rule_id: check.__name__.removeprefix("_").replace("_", "-")
        for rule_id, check in RULES.items()
    }
    assert all(rule_id == name for rule_id, name in names.items())
    assert set(RULE_IDS) == set(RULES)
    untested = [rule for rule in RULE_IDS if f"test_{rule.replace('-', '_')}" not in globals()]
    assert untested == []


def test_autogenerate_reports_every_violation_and_writes_nothing(make_project: MakeProject) -> None:
    project = make_project("broken")
    with pytest.raises(ModelRulesError) as raised:
        project.revision("create event log")
    message = str(raised.value)
    assert message.startswith(
        "pgkeel: the models break the standards, no migration was written: 6 problems."
    )
    assert [(v.rule, v.where) for v in raised.value.violations] == [
        ("plural-table-name", "event_log"),
        ("uuid-primary-key", "event_log.id"),
        ("timestamps", "event_log"),
        ("snake-case-column", "event_log.happenedAt"),
        ("timestamptz", "event_log.happenedAt"),
        ("jsonb", "event_log.payload"),
    ]
    assert "[jsonb] event_log.payload: json column" in message
    assert "    opt out: mapped_column(..., info=pgkeel.naming.allow('jsonb'))" in message
    assert project.versions() == []
