"""Example: authors and books that reference each other (a foreign key cycle), and reviews."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Author(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]
    best_book_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("books.id", use_alter=True))


class Book(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    title: Mapped[str]
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("authors.id"))


class Review(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    book_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("books.id"))
    stars: Mapped[int]
