"""Example, second version: a new foreign key, index and columns on tables in use."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import ForeignKey, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]
    referrer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[int] = mapped_column(index=True)
    note: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default=text("'new'"))
