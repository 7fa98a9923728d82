"""Example, second version: the same index, with a predicate that also skips empty emails."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, text
from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel import SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    email: Mapped[str]

    __table_args__ = (
        Index(
            "uq_accounts_email",
            "email",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND email != ''"),
        ),
    )
