"""Example, next version: code alone is unique (stricter), and so is email with code."""

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
    email: Mapped[str] = mapped_column(unique=True)
    code: Mapped[str] = mapped_column(String(50))
    region: Mapped[str] = mapped_column(String(20))

    __table_args__ = (
        Index("uq_accounts_code", "code", unique=True),
        Index("uq_accounts_email_code", "email", "code", unique=True),
        Index(
            "uq_accounts_region_vip", "region", unique=True, postgresql_where=text("code = 'vip'")
        ),
    )
