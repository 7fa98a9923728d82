"""Example, second version: bookings are no longer cancelled, and the model's rule is gone."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy.dialects.postgresql import TSTZRANGE, Range
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Booking(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A booking of the hall."""

    during: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
