"""Example, second version: a unique rule, a check, an index and a foreign key on ``"user"``."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import CheckConstraint, ForeignKey, Index
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    select: Mapped[str] = mapped_column(unique=True)


class User(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint('"order" >= 0', name="order"),
        Index("idx_user_order_check", "order", "check"),
        {"info": allow("plural-table-name")},
    )
    order: Mapped[int]
    check: Mapped[str | None]
    group_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("group.id", ondelete="SET NULL"))
