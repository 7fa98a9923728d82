"""What the service checks before it starts, each problem one paragraph on stderr.

Stopped with what is wrong, where, and the fix: ``DATABASE_URL`` missing, a database that does
not answer{% if cookiecutter.__tenants == "yes" %}, and a runtime role that bypasses row-level security (a superuser or
``BYPASSRLS``, itself or through a role it belongs to: every tenant would see every other
tenant's rows){% endif %}. ``--traceback`` (or ``TRACEBACK=1``) shows the full traceback as well.
"""

from __future__ import annotations

import os
import sys
import traceback

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.core.config import DATABASE_URL, SettingsError, get_settings
from app.core.database import get_engine
{%- if cookiecutter.__tenants == "yes" %}

ALLOW_RLS_BYPASS = "ALLOW_RLS_BYPASS"
_BYPASSING_ROLES = text(
    "select r.rolname from pg_roles r "
    "where (r.rolsuper or r.rolbypassrls) and pg_has_role(current_user, r.oid, 'MEMBER') "
    "order by r.rolname"
)
{%- endif %}


class StartupError(RuntimeError):
    """The service cannot start; the message is the paragraph to show."""


def describe_server() -> str:
    """Connect once; ``connected as ROLE to DATABASE (PostgreSQL VERSION)``."""
    engine = get_engine()
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            role, database, version = connection.execute(
                text("select current_user, current_database(), current_setting('server_version')")
            ).one()
{%- if cookiecutter.__tenants == "yes" %}
            bypassing = list(connection.execute(_BYPASSING_ROLES).scalars())
{%- endif %}
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise StartupError(
            f"The database at {DATABASE_URL} ({where}) does not answer: {reason}. Fix: start it "
            "(`make db` for the development database, `docker compose up -d postgres pgbouncer` "
            f"for the compose stack), or correct {DATABASE_URL}."
        ) from exc
{%- if cookiecutter.__tenants == "yes" %}
    if bypassing and os.environ.get(ALLOW_RLS_BYPASS) != "1":
        raise StartupError(
            f"{DATABASE_URL} connects as {role!r}, which bypasses row-level security (through "
            f"{', '.join(bypassing)}: a superuser or BYPASSRLS), so every tenant would see every "
            f"other tenant's rows. Fix: connect as the runtime role (after `make db`, "
            f"`export {DATABASE_URL}=$(pgkeel db url)`; in production the role of "
            f"deploy/postgres/10-app-role.sh), or set {ALLOW_RLS_BYPASS}=1 if this is on purpose."
        )
{%- endif %}
    return f"connected as {role} to {database} (PostgreSQL {version})"


def check_or_exit() -> str:
    """``describe_server()``, or the problem as one paragraph on stderr and exit status 1."""
    try:
        get_settings().require_database_url()
        return describe_server()
    except (SettingsError, StartupError) as exc:
        if "--traceback" in sys.argv or os.environ.get("TRACEBACK") == "1":
            traceback.print_exc()
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None
