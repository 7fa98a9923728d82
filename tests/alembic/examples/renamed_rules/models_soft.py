"""Example: a soft-deleted member's unique rules, partial and on an expression, before a rename."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Member(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    """One live member per email, and per code whatever its case."""

    email: Mapped[str] = mapped_column(unique=True)
    code: Mapped[str] = mapped_column()

    __table_args__ = (Index("uq_members_lower_code", func.lower(code), unique=True),)
