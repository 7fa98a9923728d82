"""pgkeel: PostgreSQL data-layer standards for SQLAlchemy 2 services."""

from __future__ import annotations

from pgkeel.errors import (
    CrossTenantWriteError,
    DatabaseError,
    DatabaseNotFoundError,
    NamingError,
    PgkeelError,
    TenantNotSetError,
)

__all__ = [
    "CrossTenantWriteError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "NamingError",
    "PgkeelError",
    "TenantNotSetError",
]
