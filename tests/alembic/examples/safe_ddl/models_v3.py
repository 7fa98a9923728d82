"""Example, third version: NOT NULL columns without a server default on tables in use."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.naming import allow
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]
    country: Mapped[str]
    region: Mapped[str] = mapped_column(info=allow("not-null-default"))


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[int]
    currency: Mapped[str]
