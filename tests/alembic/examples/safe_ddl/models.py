"""Example: two tables that already hold rows when the next migration runs."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[int]
