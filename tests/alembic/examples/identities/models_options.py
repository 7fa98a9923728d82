"""Example, second version: the numbers go on from 1000, by tens."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import BigInteger, Identity
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Ticket(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A ticket and its number."""

    seq: Mapped[int] = mapped_column(BigInteger, Identity(start=1000, increment=10))
