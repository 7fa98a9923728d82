"""Example: an item's sku is unique, through an index of its own name."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Item(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An item."""

    sku: Mapped[str] = mapped_column()

    __table_args__ = (Index("idx_items_sku", "sku", unique=True),)
