"""Example, second version: only the predicate of the partial unique index changes."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import Index, and_
from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    email: Mapped[str]
    deleted_at: Mapped[datetime | None]


accounts = Account.__table__
Index(
    "uq_accounts_email",
    accounts.c.email,
    unique=True,
    postgresql_where=and_(accounts.c.deleted_at.is_(None), accounts.c.email != ""),
)
