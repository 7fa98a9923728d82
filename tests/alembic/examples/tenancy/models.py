"""Example: timestamps kept by a trigger, and a tenant table under row-level security."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.dbobjects import Policy, RowLevelSecurity, attach
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP

TENANT = "tenant_id = current_setting('app.tenant_id', true)::uuid"


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer organisation."""

    name: Mapped[str]


class Invoice(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An invoice, visible to its tenant only."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    number: Mapped[str]

    __table_args__ = (Index(None, "tenant_id", "number", unique=True),)


invoices = Invoice.__table__
attach(
    invoices,
    RowLevelSecurity(table="invoices"),
    Policy(table="invoices", name="tenant_isolation", using=TENANT, with_check=TENANT),
)
