"""The Python-to-PostgreSQL type map of ``Base``: annotations alone give the standard types.

``datetime`` is always ``timestamptz`` (a naive timestamp cannot come from an annotation),
``uuid.UUID`` is the native ``uuid`` type, JSON containers (``dict``, ``list`` and any
``dict[...]``/``list[...]``) are ``jsonb``, ``Decimal`` is ``numeric`` and ``str`` is ``text``;
``Str255`` is a ``varchar(255)`` for names and emails.
"""

from __future__ import annotations

import typing
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from sqlalchemy import UUID, DateTime, Numeric, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import mapped_column

if TYPE_CHECKING:
    from sqlalchemy.orm.decl_api import TypeResolve

Str255 = Annotated[str, mapped_column(String(255))]
"""A ``varchar(255)``: for names and emails, where a bound catches garbage early."""

JSON_CONTAINERS = (dict, list)

TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    datetime: DateTime(timezone=True),
    uuid.UUID: UUID(as_uuid=True),
    dict: JSONB,
    list: JSONB,
    # The common parametrized forms, for SQLAlchemy 2.0 (2.1 maps any of them: see below).
    dict[str, Any]: JSONB,
    dict[str, str]: JSONB,
    list[Any]: JSONB,
    list[str]: JSONB,
    list[int]: JSONB,
    list[dict[str, Any]]: JSONB,
    Decimal: Numeric(),
    str: Text(),
}


def json_container_type(resolve: TypeResolve) -> JSONB | None:
    """``resolve_type_annotation`` listener: any ``dict[...]``/``list[...]`` is ``jsonb``."""
    annotation = resolve.resolved_type
    if annotation in resolve.registry.type_annotation_map:
        return None
    return JSONB() if typing.get_origin(annotation) in JSON_CONTAINERS else None
