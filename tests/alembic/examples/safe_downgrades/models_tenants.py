"""Accounts, and notes that belong to a tenant (TenantMixin)."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    email: Mapped[str]
    code: Mapped[str] = mapped_column(String(50))
    level: Mapped[str] = mapped_column(server_default="basic")


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]


class Note(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    body: Mapped[str]
