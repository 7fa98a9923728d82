"""Example: unique rules on expressions, with operator classes, INCLUDE, a WHERE of their own and
NULLS NOT DISTINCT, on a soft-delete table and on tenant tables."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import Index, UniqueConstraint, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel import SoftDeleteMixin, TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer organisation."""

    name: Mapped[str]


class Member(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    """A member: one live account per email whatever its case; codes unique among active ones."""

    email: Mapped[str]
    code: Mapped[str]
    status: Mapped[str]
    badge: Mapped[str | None]
    club: Mapped[uuid.UUID | None]

    __table_args__ = (
        Index("uq_members_lower_email", func.lower(text("email")), unique=True),
        Index(
            "uq_members_code",
            "code",
            unique=True,
            postgresql_ops={"code": "text_pattern_ops"},
            postgresql_include=["status"],
            postgresql_where=text("status IN ('active', 'paused')"),
        ),
        UniqueConstraint("club", "badge", postgresql_nulls_not_distinct=True),
    )


class Item(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    """A catalogue item: its code and its label (whatever the case) are unique per tenant."""

    code: Mapped[str]
    label: Mapped[str]

    __table_args__ = (
        Index("uq_items_code_lower_label", "code", func.lower(text("label")), unique=True),
        Index("uq_items_lower_label", func.lower(text("label")), unique=True),
    )


class Document(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """A document: one live title per tenant, whatever its case."""

    title: Mapped[str]

    __table_args__ = (Index("uq_documents_lower_title", func.lower(text("title")), unique=True),)
