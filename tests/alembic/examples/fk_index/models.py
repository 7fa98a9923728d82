"""Example: every foreign key gets an index, unless one already covers it or it opts out."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.naming import allow
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Author(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]


class Book(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """author_id has no index in the model: the migration adds idx_books_author_id."""

    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authors.id"))
    title: Mapped[str]


class Review(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """(book_id, rating) already starts with book_id: no extra index."""

    book_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("books.id"))
    rating: Mapped[int]

    __table_args__ = (Index(None, "book_id", "rating"),)


class Loan(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """book_id opts out: a table this small is read whole anyway."""

    book_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("books.id", info=allow("fk-index")))


author_stats = Table(
    "author_stats",
    Base.metadata,
    Column("author_id", ForeignKey("authors.id")),
    Column("books", BigInteger),
    info={"pgkeel_migrate": False},
    comment="A view (created by hand) mapped for reads: migrations and rules leave it alone.",
)
