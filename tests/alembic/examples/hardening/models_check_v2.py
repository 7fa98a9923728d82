"""Example, hardening: the CHECK constraint's expression changed."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    email: Mapped[str]
    nickname: Mapped[str | None]
    code: Mapped[str] = mapped_column(String(50))


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    total: Mapped[int] = mapped_column(index=True)

    __table_args__ = (CheckConstraint("total > 0", name="total_not_negative"),)
