"""Example, second version: email renamed to mail, code to sku; their rules follow."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Customer(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer, unique by mail and by sku."""

    mail: Mapped[str] = mapped_column(unique=True)
    sku: Mapped[str]

    __table_args__ = (Index(None, "sku", unique=True),)
