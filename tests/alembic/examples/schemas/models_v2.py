"""Example, second version: the order's note is shorter and its number no longer unique."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import SoftDeleteMixin, TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer of the service, in the default schema."""

    name: Mapped[str]


class Order(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """An order of a tenant, in the sales schema."""

    __table_args__ = (
        CheckConstraint("char_length(number) > 0", name="number_present"),
        {"schema": "sales"},
    )

    number: Mapped[str]
    note: Mapped[str | None] = mapped_column(String(20))
