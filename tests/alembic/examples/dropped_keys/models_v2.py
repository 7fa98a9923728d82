"""Example, second version: codes are no longer known by a value, and users hold none."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Code(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A code."""

    name: Mapped[str]


class User(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A user."""

    name: Mapped[str]
