"""Example: a tenant table with soft delete, on an isolated base (TenantMixin, SoftDeleteMixin).

What the migration must hold: the updated_at trigger function and a trigger per table, row-level
security enabled and forced with the tenant policy, and the partial unique index over live rows.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import SoftDeleteMixin, TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer organisation."""

    name: Mapped[str]


class Invoice(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """An invoice, visible to its tenant only; its number is unique among live invoices."""

    number: Mapped[str] = mapped_column(unique=True)
