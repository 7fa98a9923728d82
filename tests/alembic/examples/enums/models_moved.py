"""Example, another version: the status moves to an enum type of its own, with the same values."""

from __future__ import annotations

import enum
from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]


class OrderState(enum.StrEnum):
    NEW = "new"
    PAID = "paid"


class Priority(enum.Enum):
    LOW = 1
    HIGH = 2


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    status: Mapped[OrderState]
    priority: Mapped[Priority | None]
