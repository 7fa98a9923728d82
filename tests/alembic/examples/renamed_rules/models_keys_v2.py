"""Example, orders after the rename: customer_id is buyer_id, qty is quantity."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import CheckConstraint, ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer."""

    name: Mapped[str]


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An order of a positive quantity, by a customer."""

    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    quantity: Mapped[int]

    __table_args__ = (CheckConstraint("quantity > 0", name="qty_positive"),)
