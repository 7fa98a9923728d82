"""Example: ``seen_at`` becomes timestamptz."""

from __future__ import annotations

import datetime
from typing import ClassVar

from sqlalchemy import DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Visit(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    email: Mapped[str]
    seen_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
