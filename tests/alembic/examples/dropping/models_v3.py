"""Example, third version: authors and books (a foreign key cycle) are both gone."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Review(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    book_id: Mapped[uuid.UUID]
    stars: Mapped[int]
