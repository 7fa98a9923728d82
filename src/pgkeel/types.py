"""The Python-to-PostgreSQL type map of ``Base``: annotations alone give the standard types.

``datetime`` is always ``timestamptz`` (a naive timestamp cannot come from an annotation),
``uuid.UUID`` is the native ``uuid`` type, JSON containers are ``jsonb``, ``Decimal`` is
``numeric`` and ``str`` is ``text``; ``Str255`` is a ``varchar(255)`` for names and emails.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import UUID, DateTime, Numeric, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import mapped_column

Str255 = Annotated[str, mapped_column(String(255))]
"""A ``varchar(255)``: for names and emails, where a bound catches garbage early."""

TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    datetime: DateTime(timezone=True),
    uuid.UUID: UUID(as_uuid=True),
    dict: JSONB,
    list: JSONB,
    dict[str, Any]: JSONB,
    list[Any]: JSONB,
    Decimal: Numeric(),
    str: Text(),
}
