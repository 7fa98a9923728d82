"""Example: a partial index whose predicate PostgreSQL stores in another spelling, and a unique
index that a failed concurrent build can leave INVALID."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, text
from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP

OPEN_TASKS = "state IN ('open', 'blocked') AND priority > 2"


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Task(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A task: urgent open ones are listed by priority; each has its own code."""

    code: Mapped[str]
    state: Mapped[str]
    priority: Mapped[int]

    __table_args__ = (
        Index("idx_tasks_open", "priority", postgresql_where=text(OPEN_TASKS)),
        Index("uq_tasks_code", "code", unique=True),
    )
