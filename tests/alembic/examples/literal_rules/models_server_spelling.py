"""Example: the first version's rules as PostgreSQL spells them: the same rules."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import CheckConstraint, Index, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.naming import allow
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Code(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A code: its shape, the amounts it needs and its uniqueness among active codes."""

    code: Mapped[str]
    status: Mapped[str] = mapped_column(server_default=text("'pending'::text"))
    kind: Mapped[str] = mapped_column("Kind", server_default="a", info=allow("snake-case-column"))
    a: Mapped[int] = mapped_column(server_default="0")
    b: Mapped[int] = mapped_column(server_default="0")
    c: Mapped[int] = mapped_column(server_default="0")

    __table_args__ = (
        CheckConstraint("((code ~ '^[a-z]{3}$'::text))", name="code_shape"),
        CheckConstraint("((a > 0) OR ((b > 0) AND (c > 0)))", name="amounts"),
        CheckConstraint("(\"Kind\" <> 'x'::text)", name="kind"),
        Index(
            "uq_codes_code", "code", unique=True, postgresql_where=text("(status = 'active'::text)")
        ),
    )
