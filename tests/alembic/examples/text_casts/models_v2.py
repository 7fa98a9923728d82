"""Example, second version: the same rules without the casts, in the enum's order."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import CheckConstraint, Enum, Index, Numeric, text
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
CHECK = "status <= 'closed'"
EMPTY = "abs(balance) = '0'"
PREDICATE = "priority >= '5'"


class Ticket(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A ticket: statuses up to closed, titles unique from priority 5."""

    title: Mapped[str]
    status: Mapped[Status] = mapped_column(STATUS)
    priority: Mapped[int]
    balance: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    __table_args__ = (
        CheckConstraint(CHECK, name="status_order"),
        Index("uq_tickets_title", "title", unique=True, postgresql_where=text(PREDICATE)),
        Index("uq_tickets_title_empty", "title", unique=True, postgresql_where=text(EMPTY)),
    )
