"""Example: a custom type that does not keep its required argument cannot be rendered."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Prefixed(TypeDecorator[str]):
    """Stores values with a prefix it does not keep under the argument's name."""

    impl = String
    cache_ok = True

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.stored_prefix = prefix


class Hashed(TypeDecorator[str]):
    """Keeps a hash function: a lambda has no name a migration could import."""

    impl = String
    cache_ok = True

    def __init__(self, hasher: Any) -> None:
        super().__init__()
        self.hasher = hasher


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Label(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    text: Mapped[str] = mapped_column(Prefixed("lbl-"))


class Digest(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    value: Mapped[str] = mapped_column(Hashed(lambda text: text))
