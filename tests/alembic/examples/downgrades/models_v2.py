"""Example, second version: emails may repeat, orders keep a bare customer id, notes are gone."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer; two may share an email."""

    email: Mapped[str]


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An order; its customer id is a plain value now (the customer may live elsewhere)."""

    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    number: Mapped[str]
