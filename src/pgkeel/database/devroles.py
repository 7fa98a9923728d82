"""The roles of a development cluster: an owner that migrates, a runtime role bound by RLS.

``pgkeel db start`` makes (and on every start re-asserts) the same split a deployment has: the
owner role owns the development database and runs the migrations; the runtime role, which the
service connects as, is neither a superuser nor ``BYPASSRLS`` and gets read and write on every
table and sequence the owner creates (default privileges). So row-level security applies in the
daily loop exactly as in production. The owner is also a member of ``pg_monitor``, which
``pgkeel doctor`` needs to read the server's statistics (as a production monitoring role is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from pgkeel.database.cluster import Cluster

DEV_DATABASE = "app"
OWNER_ROLE = "app_owner"
RUNTIME_ROLE = "app_user"
_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOREPLICATION"
_MONITOR_ROLE = "pg_monitor"


def _role_sql(role: str) -> list[sql.Composed]:
    """Create ``role`` if it is missing, then give it exactly the development attributes."""
    name = sql.Identifier(role)
    attributes = sql.SQL(_ROLE_ATTRIBUTES)
    return [
        sql.SQL(
            "DO $$ BEGIN CREATE ROLE {} {}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ).format(name, attributes),
        sql.SQL("ALTER ROLE {} {}").format(name, attributes),
    ]


def _grants_sql() -> list[sql.Composed]:
    """Inside the development database: what the runtime role may use of the owner's objects."""
    owner, runtime = sql.Identifier(OWNER_ROLE), sql.Identifier(RUNTIME_ROLE)
    defaults = "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT {} TO {}"
    return [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(runtime),
        sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(owner),
        sql.SQL(defaults).format(
            owner, sql.SQL("SELECT, INSERT, UPDATE, DELETE ON TABLES"), runtime
        ),
        sql.SQL(defaults).format(owner, sql.SQL("USAGE, SELECT ON SEQUENCES"), runtime),
    ]


def _execute(connection: psycopg.Connection[Any], statements: list[sql.Composed]) -> None:
    for statement in statements:
        connection.execute(statement)


def ensure_dev_roles(cluster: Cluster) -> None:
    """Create or repair the owner role, the runtime role and the owner's database."""
    with psycopg.connect(cluster.conninfo(), autocommit=True) as admin:
        _execute(admin, _role_sql(OWNER_ROLE) + _role_sql(RUNTIME_ROLE))
        owner, runtime = sql.Identifier(OWNER_ROLE), sql.Identifier(RUNTIME_ROLE)
        admin.execute(sql.SQL("REVOKE {} FROM {}").format(owner, runtime))
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(_MONITOR_ROLE), owner))
        found = admin.execute(
            "select 1 from pg_database where datname = %s", (DEV_DATABASE,)
        ).fetchone()
        if found is None:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DEV_DATABASE), sql.Identifier(OWNER_ROLE)
                )
            )
    with psycopg.connect(cluster.conninfo(DEV_DATABASE), autocommit=True) as database:
        _execute(database, _grants_sql())


def reset_dev_database(cluster: Cluster) -> None:
    """Drop the development database (its sessions too) and make it again, empty."""
    with psycopg.connect(cluster.conninfo(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEV_DATABASE))
        )
    ensure_dev_roles(cluster)
