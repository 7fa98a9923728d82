"""Example, second version (expand): orders get a nullable tenant_id, filled in afterwards."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.naming import allow
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer organisation."""

    name: Mapped[str] = mapped_column(unique=True)


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An order; its number is unique."""

    # Until the contract step, tenant_id is a plain column: not yet a tenant table's rules.
    __table_args__ = {"info": allow("tenant-rls", "tenant-leading-column")}  # noqa: RUF012

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"))
    number: Mapped[str] = mapped_column(unique=True)
    shop: Mapped[str]
