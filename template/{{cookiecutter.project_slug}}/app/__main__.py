"""``python -m app``: check that the service reaches its database through ``DATABASE_URL``."""

from __future__ import annotations

import sys

from sqlalchemy import text

from app.core.database import get_engine


def main() -> int:
    """Connect once and print who and where the service is on the server."""
    with get_engine().connect() as connection:
        role, database, version = connection.execute(
            text("select current_user, current_database(), current_setting('server_version')")
        ).one()
    sys.stdout.write(f"connected as {role} to {database} (PostgreSQL {version})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
