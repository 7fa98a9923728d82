"""Example, hardening: new columns with volatile, stable and constant defaults."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    ForeignKey,
    String,
    func,
    text,
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
    token: Mapped[uuid.UUID] = mapped_column(server_default=func.gen_random_uuid())
    seen_at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())
    joined_at: Mapped[datetime] = mapped_column(server_default=func.now())
    level: Mapped[int] = mapped_column(server_default=text("1"))


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    total: Mapped[int] = mapped_column(index=True)
