"""The service's engine and sessions: one engine per process, sessions with pgkeel's hooks.

Use ``get_sessionmaker()`` for every session: its sessions filter soft-deleted rows and{% if cookiecutter.__tenants == "yes" %}
send the tenant of ``pgkeel.tenant_context`` to PostgreSQL at the start of each transaction, so
that row-level security shows each tenant only its own rows.{% else %}
refuse writes that would break pgkeel's standards.{% endif %}
"""

from __future__ import annotations

from functools import cache

from pgkeel import create_sessionmaker
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import get_settings


@cache
def get_engine() -> Engine:
    """The engine on ``DATABASE_URL`` (the runtime role), created on first use."""
    return create_engine(get_settings().require_database_url(), pool_pre_ping=True)


@cache
def get_sessionmaker() -> sessionmaker[Session]:
    """The factory of the service's sessions, bound to ``get_engine()``."""
    return create_sessionmaker(get_engine())
