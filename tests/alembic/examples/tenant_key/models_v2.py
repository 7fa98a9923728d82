"""Example, second version: invoices reference their user within the tenant.

``tenant_foreign_key`` needs the unique key ``(tenant_id, id)`` on ``users``, a table that
already has rows: the key is built concurrently in the revision that follows the one creating
``invoices``, so the foreign key is added there, after the key, ``NOT VALID`` then validated.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped

from pgkeel import TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.tenancy import tenant_foreign_key
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer organisation."""

    name: Mapped[str]


class User(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    """A user of a tenant."""

    email: Mapped[str]


class Invoice(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    """An invoice of a tenant, sent to one of the tenant's users."""

    user_id: Mapped[uuid.UUID]
    number: Mapped[int]
    __table_args__ = (tenant_foreign_key("user_id", "users.id", ondelete="CASCADE"),)
