"""``DATABASE_URL``: its name and its parsing, apart from the servers pgkeel can start.

The Alembic side reads the URL on every command; it needs neither the cluster machinery nor the
binaries search of ``pgkeel.database.resolve``, so this module imports only SQLAlchemy's URL.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pgkeel.errors import DatabaseError

DATABASE_URL_ENV = "DATABASE_URL"
URL_EXAMPLE = "postgresql+psycopg://user:password@localhost:5432/dbname"


def parse_database_url(raw: str, *, source: str = DATABASE_URL_ENV) -> URL:
    """Parse a PostgreSQL URL with the psycopg 3 driver; raise a clear error for anything else."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise DatabaseError(
            f"{source} is not a database URL: {raw!r}. Fix: set it to a URL such as {URL_EXAMPLE}."
        ) from None
    except ValueError as error:  # SQLAlchemy reads the port with int(): 'localhost:notaport'
        raise DatabaseError(
            f"{source} is not a database URL: {raw!r} ({error}). "
            f"Fix: set it to a URL such as {URL_EXAMPLE}, the port a number."
        ) from None
    backend = url.get_backend_name()
    if backend not in {"postgresql", "postgres"}:
        raise DatabaseError(
            f"{source} points at {backend!r}, but pgkeel needs PostgreSQL. "
            f"Fix: set it to a URL such as {URL_EXAMPLE}."
        )
    if url.get_driver_name() not in {"psycopg", "postgresql", "postgres"}:
        raise DatabaseError(
            f"{source} uses the driver {url.get_driver_name()!r}; pgkeel supports psycopg 3 only. "
            f"Fix: write it as {URL_EXAMPLE} (driver 'psycopg')."
        )
    return url.set(drivername="postgresql+psycopg")
