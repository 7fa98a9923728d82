"""Example: custom types built with arguments render with those arguments."""

from __future__ import annotations

import enum
import json
from typing import Any, ClassVar

from sqlalchemy import Dialect, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class StringEnum(TypeDecorator[enum.Enum]):
    """An enum stored as its value in a varchar: the enum class is a required argument."""

    impl = String
    cache_ok = True

    def __init__(
        self, enum_class: type[enum.Enum], length: int = 32, *, default: Any = None
    ) -> None:
        super().__init__(length)
        self.enum_class = enum_class
        self.length = length
        self.default = default

    def process_bind_param(self, value: Any, _dialect: Dialect) -> Any:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: Any, _dialect: Dialect) -> Any:
        return None if value is None else self.enum_class(value)


class Serialized(TypeDecorator[Any]):
    """Text written by a serializer module given as an argument (json by default)."""

    impl = String
    cache_ok = True

    def __init__(self, serializer: Any = None, options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.serializer = serializer
        self.options = options


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Swatch(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    color: Mapped[Color] = mapped_column(StringEnum(Color, 20, default=Color.RED))
    shade: Mapped[Color | None] = mapped_column(StringEnum(Color))
    notes: Mapped[str | None] = mapped_column(Serialized(json, {"indent": 2, "keys": ("a",)}))
