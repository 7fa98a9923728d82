"""Example, second version: the columns the old unique rules used are gone, new rules replace them.

Accounts are no longer archived (email unique over every row), a coupon's suffix is gone (code
unique whatever the case), members are no longer soft-deleted, orders no longer have tenants.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Index, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A customer of the service."""

    name: Mapped[str]


class Account(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One account per email."""

    email: Mapped[str]

    __table_args__ = (
        Index("uq_accounts_email", "email", unique=True),
        Index("idx_accounts_created_at", "created_at"),
    )


class Coupon(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A code, unique whatever the case."""

    code: Mapped[str]

    __table_args__ = (Index("uq_coupons_lower_code", func.lower(text("code")), unique=True),)


class Member(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One member per email."""

    email: Mapped[str] = mapped_column(unique=True)


class Order(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One order number over all orders."""

    number: Mapped[str] = mapped_column(unique=True)
