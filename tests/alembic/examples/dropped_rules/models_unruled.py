"""Example, another second version: the archived column and the rule that used it both go.

Nothing replaces the rule on email: autogenerate refuses its drop until it is acknowledged.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import SoftDeleteMixin, TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer of the service."""

    name: Mapped[str]


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """Accounts, any number per email."""

    email: Mapped[str]

    __table_args__ = (Index("idx_accounts_created_at", "created_at"),)


class Coupon(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A code, unique with its suffix whatever the case."""

    code: Mapped[str]
    suffix: Mapped[str | None]

    __table_args__ = (
        Index("uq_coupons_code", text("lower(code || coalesce(suffix, ''))"), unique=True),
    )


class Member(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, Base):
    """One live member per email."""

    email: Mapped[str] = mapped_column(unique=True)


class Order(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    """One order number per tenant."""

    number: Mapped[str] = mapped_column(unique=True)
