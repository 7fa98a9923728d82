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
    ReadRefusedError,
    TenantNotSetError,
    UnfilteredReadError,
)
from pgkeel.mixins import BaseModel, TimestampMixin, UUIDPrimaryKeyMixin, VersionedMixin
from pgkeel.session import create_sessionmaker, install_session_hooks
from pgkeel.softdelete import SoftDeleteMixin, SoftDeleteModel, hard_delete
from pgkeel.tenancy import ALL_TENANTS, MultiTenantModel, TenantMixin, tenant_context
from pgkeel.types import Str255

__all__ = [
    "ALL_TENANTS",
    "Base",
    "BaseModel",
    "CrossTenantWriteError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "ModelDefinitionError",
    "MultiTenantModel",
    "NamingError",
    "PgkeelError",
    "ReadRefusedError",
    "SoftDeleteMixin",
    "SoftDeleteModel",
    "Str255",
    "TenantMixin",
    "TenantNotSetError",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "UnfilteredReadError",
    "VersionedMixin",
    "create_sessionmaker",
    "hard_delete",
    "install_session_hooks",
    "tenant_context",
]
