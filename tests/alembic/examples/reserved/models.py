"""Example: a table named by a reserved word, with columns named by reserved words, and rows."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.naming import allow
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Group(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "group"
    __table_args__ = {"info": allow("plural-table-name")}  # noqa: RUF012
    select: Mapped[str]


class User(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "user"
    __table_args__ = {"info": allow("plural-table-name")}  # noqa: RUF012
    order: Mapped[int]
    check: Mapped[str | None]
