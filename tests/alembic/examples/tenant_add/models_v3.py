"""Example, third version (contract): orders are tenant rows; numbers are unique per tenant."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer organisation."""

    name: Mapped[str] = mapped_column(unique=True)


class Order(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    """An order; its number is unique per tenant."""

    number: Mapped[str] = mapped_column(unique=True)
    shop: Mapped[str]
