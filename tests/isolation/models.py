"""An isolated set of tenant and soft-delete models for the isolation tests.

Relationships cover every load path: one-to-many, many-to-one and many-to-many (through a tenant
association table), each loadable lazily or eagerly.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import Column, ForeignKey, Table, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, query_expression, relationship

from pgkeel import SoftDeleteMixin, TenantMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.tenancy import protect_tenant_table, tenant_id_column
from pgkeel.types import TYPE_ANNOTATION_MAP, Str255


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, Base):
    """A customer organisation: every other table belongs to one."""

    name: Mapped[Str255]
    customers: Mapped[list[Customer]] = relationship(viewonly=True)


customer_tags = protect_tenant_table(
    Table(
        "customer_tags",
        Base.metadata,
        tenant_id_column(),
        Column("customer_id", ForeignKey("customers.id"), primary_key=True),
        Column("tag_id", ForeignKey("tags.id"), primary_key=True, index=True),
    )
)


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """A customer of a tenant."""

    name: Mapped[Str255]
    email: Mapped[Str255] = mapped_column(unique=True)
    invoices: Mapped[list[Invoice]] = relationship(back_populates="customer")
    tags: Mapped[list[Tag]] = relationship(secondary=customer_tags)
    invoice_count: Mapped[int | None] = query_expression()


class Invoice(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """An invoice sent to a customer."""

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    number: Mapped[int]
    amount: Mapped[int] = mapped_column(default=0)
    customer: Mapped[Customer] = relationship(back_populates="invoices")


class Tag(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A label on customers."""

    label: Mapped[Str255]
    __table_args__ = (UniqueConstraint("label"),)


class Plan(UUIDPrimaryKeyMixin, SoftDeleteMixin, Base):
    """A price plan shared by all tenants (soft delete without tenancy)."""

    code: Mapped[Str255] = mapped_column(unique=True)
