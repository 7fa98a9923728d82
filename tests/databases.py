"""Databases and roles the tests build on the throwaway server, in one place.

The isolation, pagination, doctor and template tests all need the same two things: a database
whose tables a set of models created (as the server's superuser, standing in for the migration
owner), and login roles that use those tables without owning them (the runtime role that
row-level security binds, or a system job's role that bypasses it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import URL

from pgkeel.database import conninfo
from pgkeel.testing.databases import create_database, drop_database

RUNTIME_GRANTS = "SELECT, INSERT, UPDATE, DELETE"


def create_tables(url: URL | str, metadata: MetaData) -> None:
    """Create ``metadata``'s tables in the database at ``url``, in one transaction."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
    finally:
        engine.dispose()


@contextmanager
def models_database(server: URL, name: str, metadata: MetaData) -> Iterator[URL]:
    """A new database holding ``metadata``'s tables; it is dropped on exit."""
    url = create_database(server, name)
    try:
        create_tables(url, metadata)
        yield url
    finally:
        drop_database(server, name)


def create_runtime_role(
    server: URL, database: str, role: str, attributes: str = "NOBYPASSRLS"
) -> None:
    """A login role that may use the tables of ``database`` (public schema) but owns nothing.

    With ``attributes="BYPASSRLS"``: a system job's role that row-level security does not bind.
    """
    with psycopg.connect(conninfo(server), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER {} NOCREATEDB NOCREATEROLE").format(
                sql.Identifier(role), sql.SQL(attributes)
            )
        )
    with psycopg.connect(conninfo(server.set(database=database)), autocommit=True) as db:
        db.execute(
            sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.SQL(RUNTIME_GRANTS), sql.Identifier(role)
            )
        )


def drop_role(server: URL, role: str, database: str | None = None) -> None:
    """Remove ``role``; its privileges in ``database`` first, when that database still exists."""
    identifier = sql.Identifier(role)
    with psycopg.connect(conninfo(server), autocommit=True) as admin:
        if database is not None and _both_exist(admin, role, database):
            with psycopg.connect(
                conninfo(server.set(database=database)), autocommit=True
            ) as connection:
                connection.execute(sql.SQL("DROP OWNED BY {}").format(identifier))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(identifier))


def _both_exist(admin: psycopg.Connection[tuple[object, ...]], role: str, database: str) -> bool:
    """Whether ``role`` and ``database`` both still exist (so DROP OWNED has work to do)."""
    row = admin.execute(
        "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %s)"
        " AND EXISTS (SELECT FROM pg_database WHERE datname = %s)",
        (role, database),
    ).fetchone()
    return bool(row and row[0])


@contextmanager
def runtime_role(
    server: URL, database: URL, role: str, attributes: str = "NOBYPASSRLS"
) -> Iterator[URL]:
    """A role made by :func:`create_runtime_role`, as the URL it logs in with; removed on exit."""
    name = database.database or ""
    create_runtime_role(server, name, role, attributes)
    try:
        yield database.set(username=role, password=None)
    finally:
        drop_role(server, role, name)
