"""The Python-to-PostgreSQL type map of ``Base``: annotations alone give the standard types.

``datetime`` is always ``timestamptz`` (a naive timestamp cannot come from an annotation),
``uuid.UUID`` is the native ``uuid`` type, JSON containers (``dict``, ``list`` and any
``dict[...]``/``list[...]``) are ``jsonb``, ``Decimal`` is ``numeric`` and ``str`` is ``text``;
``Str255`` is a ``varchar(255)`` for names and emails. A Python ``enum.Enum`` is a native
PostgreSQL enum type named after the class in snake_case (``OrderStatus``: ``order_status``);
a ``StrEnum`` stores its members' values, any other ``Enum`` their names.
"""

from __future__ import annotations

import enum
import typing
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from sqlalchemy import UUID, DateTime, Enum, Numeric, String, Text
from sqlalchemy.orm import events, mapped_column

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import JSONB
    from sqlalchemy.orm.decl_api import TypeResolve

Str255 = Annotated[str, mapped_column(String(255))]
"""A ``varchar(255)``: for names and emails, where a bound catches garbage early."""

JSON_CONTAINERS = (dict, list)

# SQLAlchemy >= 2.1 asks a listener (``json_container_type``) for the annotations its map lacks:
# the JSON containers are answered there, and PostgreSQL's dialect (about 70 ms of imports) loads
# with the first JSON column or the engine, not with pgkeel. SQLAlchemy 2.0 needs them in the map.
RESOLVES_ANNOTATIONS = hasattr(getattr(events, "RegistryEvents", None), "resolve_type_annotation")


def member_values(enum_class: type[enum.Enum]) -> list[str]:
    """The values of a ``StrEnum``'s members: what its column stores (not the member names)."""
    return [str(member.value) for member in enum_class]


TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    # A StrEnum column stores the members' values ("paid"); any other Enum, their names ("PAID").
    # The PostgreSQL type is named after the class in snake_case (pgkeel.base names it).
    enum.StrEnum: Enum(enum.StrEnum, values_callable=member_values),
    enum.Enum: Enum(enum.Enum),
    datetime: DateTime(timezone=True),
    uuid.UUID: UUID(as_uuid=True),
    Decimal: Numeric(),
    str: Text(),
}


def _jsonb() -> type[JSONB]:
    from sqlalchemy.dialects.postgresql import JSONB  # noqa: PLC0415  # see RESOLVES_ANNOTATIONS

    return JSONB


if not RESOLVES_ANNOTATIONS:
    # The common parametrized forms: SQLAlchemy 2.0 looks each one up as it is written.
    _FORMS = (dict[str, Any], dict[str, str], list[Any], list[str], list[int], list[dict[str, Any]])
    TYPE_ANNOTATION_MAP |= dict.fromkeys((dict, list, *_FORMS), _jsonb())


def is_json_container(annotation: object) -> bool:
    """``dict``, ``list`` or any ``dict[...]``/``list[...]``: stored as ``jsonb``."""
    return annotation in JSON_CONTAINERS or typing.get_origin(annotation) in JSON_CONTAINERS


def json_container_type(resolve: TypeResolve) -> JSONB | None:
    """``resolve_type_annotation`` listener: ``dict``, ``list`` and their forms are ``jsonb``."""
    annotation = resolve.resolved_type
    if annotation in resolve.registry.type_annotation_map:
        return None
    return _jsonb()() if is_json_container(annotation) else None
