"""pgkeel: PostgreSQL data-layer standards for SQLAlchemy 2 services."""

from __future__ import annotations

from pgkeel.base import Base
from pgkeel.errors import (
    CrossTenantWriteError,
    DatabaseError,
    DatabaseNotFoundError,
    ModelDefinitionError,
    NamingError,
    PgkeelError,
    TenantNotSetError,
)
from pgkeel.mixins import BaseModel, TimestampMixin, UUIDPrimaryKeyMixin, VersionedMixin
from pgkeel.types import Str255

__all__ = [
    "Base",
    "BaseModel",
    "CrossTenantWriteError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "ModelDefinitionError",
    "NamingError",
    "PgkeelError",
    "Str255",
    "TenantNotSetError",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "VersionedMixin",
]
