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
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping

DATABASE_URL = "DATABASE_URL"
MIGRATION_DATABASE_URL = "MIGRATION_DATABASE_URL"
URL_EXAMPLE = "postgresql+psycopg://user:password@host:5432/dbname"


class SettingsError(RuntimeError):
    """A setting the service needs is missing or unusable."""


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
        migration_url = (
            with_psycopg(env.get(MIGRATION_DATABASE_URL, ""), MIGRATION_DATABASE_URL)
            or database_url
        )
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


def with_psycopg(url: str, name: str = DATABASE_URL) -> str | None:
    """The URL with the psycopg 3 driver (``postgresql://`` would pick psycopg2); None if empty.

    Anything but a PostgreSQL URL is a SettingsError naming the variable ``name``.
    """
    url = url.strip()
    if not url:
        return None
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise _not_postgresql(name, f"not a URL: {exc}") from None
    backend, driver = parsed.get_backend_name(), parsed.drivername.partition("+")[2]
    if backend not in {"postgresql", "postgres"}:
        raise _not_postgresql(name, f"it names {backend!r}")
    if driver not in {"", "psycopg"}:
        raise _not_postgresql(name, f"it names the driver {driver!r}; the service uses psycopg")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _not_postgresql(name: str, reason: str) -> SettingsError:
    return SettingsError(
        f"{name} is not a PostgreSQL URL ({reason}). Fix: set it to a URL such as "
        f"{URL_EXAMPLE}; for the development database of `make db`, `pgkeel db url` prints it."
    )


def get_settings() -> Settings:
    """The current settings."""
    return Settings.from_environ()
