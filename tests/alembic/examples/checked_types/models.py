"""Example: columns that CHECK constraints read (one column, two columns), with rows."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from sqlalchemy import CheckConstraint, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Item(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An item: a label of a given shape; a title and an amount checked together; a note."""

    label: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    note: Mapped[str] = mapped_column(String(20))

    __table_args__ = (
        CheckConstraint("label ~ '^l[0-9]+$'", name="label_shape"),
        CheckConstraint("char_length(title) > 0 AND amount >= 0", name="title_amount"),
    )
