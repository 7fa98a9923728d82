"""Example, hardening: server defaults, a comment, jsonb and array columns."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    ARRAY,
    ForeignKey,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    email: Mapped[str]
    nickname: Mapped[str | None] = mapped_column(server_default="anon", comment="shown to others")
    code: Mapped[str] = mapped_column(String(50))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    total: Mapped[int] = mapped_column(index=True)
