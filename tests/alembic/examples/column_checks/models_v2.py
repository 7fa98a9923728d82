"""Example, second version: the stock column of a table with rows gets a check of its own."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Product(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A product whose price is checked where the column is declared."""

    name: Mapped[str]
    price: Mapped[int] = mapped_column(CheckConstraint("price > 0", name="price_positive"))
    stock: Mapped[int] = mapped_column(
        CheckConstraint("stock >= 0", name="stock_not_negative"), server_default="0"
    )
