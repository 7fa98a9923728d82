"""Example, third version: changes that rewrite the table (or need a USING cast)."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from sqlalchemy import Integer, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Measurement(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    label: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(50))
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    count: Mapped[Decimal] = mapped_column(Numeric)
    code: Mapped[int] = mapped_column(Integer)
