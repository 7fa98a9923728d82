"""Example, another second version: the items' code longer (a generated column reads it)."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Computed, Index, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Member(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    """One live member per email, and per code whatever its case."""

    email: Mapped[str] = mapped_column(String(50), unique=True)
    code: Mapped[str] = mapped_column(String(50))

    __table_args__ = (Index("uq_members_lower_code", func.lower(code), unique=True),)


class Item(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An item and its code in lower case, stored."""

    code: Mapped[str] = mapped_column(String(100))
    code_lower: Mapped[str | None] = mapped_column(Computed("lower(code)", persisted=True))


class Tag(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One tag per name."""

    name: Mapped[str] = mapped_column(String(50), unique=True)
