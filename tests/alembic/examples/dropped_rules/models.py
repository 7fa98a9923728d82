"""Example: unique rules that use a column the next version drops, on tables with rows.

An account's email is unique among the accounts not archived (a predicate); a coupon's code is
unique with its suffix (an expression); a member is soft-deleted (the partial rule uses
deleted_at); an order's number is unique per tenant (a constraint led by tenant_id).
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
    """One live account per email; archived accounts keep theirs."""

    email: Mapped[str]
    archived: Mapped[bool] = mapped_column(server_default=text("false"))

    __table_args__ = (
        Index("uq_accounts_email", "email", unique=True, postgresql_where=text("NOT archived")),
        Index("idx_accounts_created_at", "created_at", postgresql_where=text("NOT archived")),
    )


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
