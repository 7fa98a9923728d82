"""Example: the column that no index uses gets the "C" collation."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    email: Mapped[str] = mapped_column(unique=True)
    note: Mapped[str] = mapped_column(Text(collation="C"))
