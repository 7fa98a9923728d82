"""Example: a foreign key to a unique column other than the key, and the next version drops both.

Autogenerate writes the tables in name order: the codes' unique rule and column would be dropped
before the users' foreign key that depends on the rule's index.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Code(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A code, known by its value."""

    name: Mapped[str]
    code: Mapped[str] = mapped_column(unique=True)


class User(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A user, who may hold a code."""

    name: Mapped[str]
    code_ref: Mapped[str | None] = mapped_column(ForeignKey("codes.code"))
