"""Example: an exclusion rule whose predicate uses a column the next version drops.

No two live bookings of the hall overlap; a cancelled booking leaves its time free.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import TSTZRANGE, ExcludeConstraint, Range
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
    cancelled: Mapped[bool] = mapped_column(server_default=text("false"))

    __table_args__ = (
        ExcludeConstraint(
            ("during", "&&"), name="ex_bookings_during", using="gist", where="NOT cancelled"
        ),
    )
