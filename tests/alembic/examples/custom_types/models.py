"""Example: column types from outside SQLAlchemy render with their import."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import Dialect, Numeric, TypeDecorator
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Money(TypeDecorator[Decimal]):
    """An amount with two decimals."""

    impl = Numeric(12, 2)
    cache_ok = True

    def process_bind_param(self, value: Any, _dialect: Dialect) -> Any:
        return None if value is None else Decimal(value).quantize(Decimal("0.01"))


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Payment(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    amount: Mapped[Decimal] = mapped_column(Money())
    source_ip: Mapped[str] = mapped_column(INET())
