"""Settings of the service, read from the environment each time they are asked for.

- ``DATABASE_URL``: the runtime role, which reads and writes rows and is subject to row-level
  security (in production, through PgBouncer).
- ``MIGRATION_DATABASE_URL``: the role that owns the tables and runs ``alembic upgrade``
  (directly to PostgreSQL, not through PgBouncer); defaults to ``DATABASE_URL``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from collections.abc import Mapping

DATABASE_URL = "DATABASE_URL"
MIGRATION_DATABASE_URL = "MIGRATION_DATABASE_URL"


class SettingsError(RuntimeError):
    """A setting the service needs is missing."""


@dataclass(frozen=True)
class Settings:
    """Where the service's database is, for the runtime role and for migrations."""

    database_url: str | None
    migration_database_url: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        database_url = with_psycopg(env.get(DATABASE_URL, ""))
        migration_url = with_psycopg(env.get(MIGRATION_DATABASE_URL, "")) or database_url
        return cls(database_url=database_url, migration_database_url=migration_url)

    def require_database_url(self) -> str:
        """``DATABASE_URL``, or an error that says how to set it."""
        if self.database_url is None:
            raise SettingsError(
                f"{DATABASE_URL} is not set. Fix: export {DATABASE_URL}="
                "postgresql+psycopg://user:password@host:5432/dbname, or run `pgkeel db start` "
                f"and `export {DATABASE_URL}=$(pgkeel db url)` for a local development database."
            )
        return self.database_url


def with_psycopg(url: str) -> str | None:
    """The URL with the psycopg 3 driver (``postgresql://`` would pick psycopg2); None if empty."""
    url = url.strip()
    if not url:
        return None
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def get_settings() -> Settings:
    """The current settings."""
    return Settings.from_environ()
