"""Example: a unique rule with a predicate, on a table that will hold rows."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    email: Mapped[str]
    code: Mapped[str] = mapped_column(String(50))

    __table_args__ = (
        Index("uq_accounts_code", "code", unique=True, postgresql_where=text("code <> 'dup'")),
    )
