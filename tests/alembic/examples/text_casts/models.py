"""Example: rules that compare an enum column as text, where the cast decides the order.

The statuses are declared open, closed, archived: that is the enum's order, and as text it is
archived, closed, open. So ``status::text <= 'closed'`` holds for archived and closed, and
``status <= 'closed'`` for open and closed. A number is no different: as text ``'10' < '5'``,
and ``abs(balance)::text = '0'`` holds for no balance of two decimals (``'0.00'``), while
``abs(balance) = '0'`` holds for a zero balance.
"""

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
CHECK = "status::text <= 'closed'"
EMPTY = "abs(balance)::text = '0'"
PREDICATE = "priority::text >= '5'"


class Ticket(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A ticket: statuses up to closed as text, titles unique from priority 5 as text."""

    title: Mapped[str]
    status: Mapped[Status] = mapped_column(STATUS)
    priority: Mapped[int]
    balance: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    __table_args__ = (
        CheckConstraint(CHECK, name="status_order"),
        Index("uq_tickets_title", "title", unique=True, postgresql_where=text(PREDICATE)),
        Index("uq_tickets_title_empty", "title", unique=True, postgresql_where=text(EMPTY)),
    )
