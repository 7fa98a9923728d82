"""Example, second version: changes PostgreSQL makes without rewriting the table."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from sqlalchemy import Integer, Numeric, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Measurement(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    label: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    count: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(Text)
