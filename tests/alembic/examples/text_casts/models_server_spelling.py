"""Example: the first version's rules as PostgreSQL spells them, no change."""

from __future__ import annotations

import enum
from typing import ClassVar

from sqlalchemy import CheckConstraint, Enum, Index, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Status(enum.Enum):
    """A ticket's status, in the order of its life."""

    open = "open"
    closed = "closed"
    archived = "archived"


STATUS = Enum(Status, name="ticket_status")
CHECK = "((status)::text <= 'closed'::text)"
PREDICATE = "((priority)::text >= '5'::text)"


class Ticket(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A ticket: statuses up to closed as text, titles unique from priority 5 as text."""

    title: Mapped[str]
    status: Mapped[Status] = mapped_column(STATUS)
    priority: Mapped[int]

    __table_args__ = (
        CheckConstraint(CHECK, name="status_order"),
        Index("uq_tickets_title", "title", unique=True, postgresql_where=text(PREDICATE)),
    )
