"""pgkeel: PostgreSQL data-layer standards for SQLAlchemy 2 services.

The errors are imported at once (a module of plain classes); the other public names on first
use (PEP 562), each from the one module that defines it: ``pgkeel --help``, the pytest plugin and
``from pgkeel import BaseModel`` load only what they use, so a process never pays for SQLAlchemy's
session machinery or psycopg before it needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgkeel._lazy import lazy_exports
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

if TYPE_CHECKING:
    from pgkeel.base import Base
    from pgkeel.mixins import BaseModel, TimestampMixin, UUIDPrimaryKeyMixin, VersionedMixin
    from pgkeel.session import create_sessionmaker, install_session_hooks
    from pgkeel.softdelete import SoftDeleteMixin, SoftDeleteModel, hard_delete
    from pgkeel.tenancy import ALL_TENANTS, MultiTenantModel, TenantMixin, tenant_context
    from pgkeel.types import Str255

_HOME = {
    "ALL_TENANTS": "pgkeel.tenancy",
    "Base": "pgkeel.base",
    "BaseModel": "pgkeel.mixins",
    "MultiTenantModel": "pgkeel.tenancy",
    "SoftDeleteMixin": "pgkeel.softdelete",
    "SoftDeleteModel": "pgkeel.softdelete",
    "Str255": "pgkeel.types",
    "TenantMixin": "pgkeel.tenancy",
    "TimestampMixin": "pgkeel.mixins",
    "UUIDPrimaryKeyMixin": "pgkeel.mixins",
    "VersionedMixin": "pgkeel.mixins",
    "create_sessionmaker": "pgkeel.session",
    "hard_delete": "pgkeel.softdelete",
    "install_session_hooks": "pgkeel.session",
    "tenant_context": "pgkeel.tenancy",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _HOME)
