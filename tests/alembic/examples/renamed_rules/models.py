"""Example: columns that carry unique rules, a constraint and an index, before a rename."""

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
    """A customer, unique by email and by code."""

    email: Mapped[str] = mapped_column(unique=True)
    code: Mapped[str]

    __table_args__ = (Index(None, "code", unique=True),)
