"""Creating, copying and dropping databases on a server, with identifiers quoted by psycopg."""

from __future__ import annotations

import secrets

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from pgkeel.database import conninfo

FILE_COPY_SINCE = 150000


def session_token() -> str:
    """A short random token so two test sessions on one shared server never collide."""
    return secrets.token_hex(3)


def _admin(server: URL) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(conninfo(server), autocommit=True)


def create_database(server: URL, name: str, *, template: str | None = None) -> URL:
    """Create ``name`` (optionally as a copy of ``template``) and return its URL.

    A copy uses ``STRATEGY = FILE_COPY`` where PostgreSQL offers it (15+): for a test schema it
    is about twice as fast as the default ``WAL_LOG``, and its checkpoints cost little on a
    server without ``fsync``.
    """
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    with _admin(server) as connection:
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
            if connection.info.server_version >= FILE_COPY_SINCE:
                statement = sql.SQL("{} STRATEGY = FILE_COPY").format(statement)
        connection.execute(statement)
    return server.set(database=name)


def end_other_sessions(server: URL, name: str) -> int:
    """End every session on database ``name`` but this one's; return how many there were.

    A schema builder that leaves a connection open (an Alembic ``env.py`` with an engine of its
    own, say) would otherwise make every copy of the template fail: PostgreSQL copies a database
    only when no one else is connected to it.
    """
    with _admin(server) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def drop_database(server: URL, name: str) -> None:
    """Drop ``name`` even if connections are still open (``WITH (FORCE)``)."""
    with _admin(server) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
