"""Example, second version: the table is soft-deleted; its unique rules hold over live rows."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, UniqueConstraint, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Member(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    """A club member: one account per email, whatever its case; one code per club."""

    email: Mapped[str] = mapped_column(unique=True)
    club: Mapped[str]
    code: Mapped[str]

    __table_args__ = (
        UniqueConstraint("club", "code"),
        Index("uq_members_lower_email", func.lower(text("email")), unique=True),
    )
