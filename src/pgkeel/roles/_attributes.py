"""The connected role's own attributes and memberships."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from psycopg import sql
from sqlalchemy import text

from pgkeel.roles._problem import RoleProblem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_ROLE = text(
    "SELECT current_user, r.rolsuper, r.rolbypassrls, r.rolcreaterole, "
    "ARRAY(SELECT p.rolname FROM pg_roles p WHERE p.oid <> r.oid "
    "      AND (p.rolsuper OR p.rolbypassrls) "
    "      AND pg_has_role(r.oid, p.oid, 'MEMBER') ORDER BY p.rolname), "
    "ARRAY(SELECT p.rolname FROM pg_roles p WHERE p.oid <> r.oid "
    "      AND p.rolcreaterole AND NOT (p.rolsuper OR p.rolbypassrls) "
    "      AND pg_has_role(r.oid, p.oid, 'MEMBER') ORDER BY p.rolname), "
    "ARRAY(SELECT p.rolname FROM pg_roles p WHERE p.rolname = ANY(CAST(:server_roles AS text[])) "
    "      AND pg_has_role(r.oid, p.oid, 'MEMBER') ORDER BY p.rolname) "
    "FROM pg_roles r WHERE r.rolname = current_user"
)
_SERVER_ROLES = {
    "pg_execute_server_program": "runs programs on the database server (COPY ... FROM PROGRAM)",
    "pg_read_server_files": "reads any file of the database server (COPY ... FROM a file)",
    "pg_write_server_files": (
        "writes any file of the database server (COPY ... TO a file), its configuration included"
    ),
}
"""Predefined roles that act on the server as PostgreSQL's operating-system user."""


_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*")
_KEYWORDS = frozenset(
    str.split(
        "all analyse analyze and any array as asc asymmetric authorization binary both case cast "
        "check collate collation column concurrently constraint create cross current_catalog "
        "current_date current_role current_schema current_time current_timestamp current_user "
        "default deferrable desc distinct do else end except false fetch for foreign freeze from "
        "full grant group having ilike in initially inner intersect into is isnull join lateral "
        "leading left like limit localtime localtimestamp natural not notnull null offset on only "
        "or order outer overlaps placing primary references returning right select session_user "
        "similar some symmetric system_user table tablesample then to trailing true union unique "
        "user using variadic verbose when where window with"
    )
)
"""PostgreSQL's reserved keywords and those not allowed as a role or table name."""


def sql_name(*parts: str) -> str:
    """A (qualified) name as SQL for the fix statements, each part quoted if it needs to be."""
    return ".".join(
        part
        if _PLAIN_NAME.fullmatch(part) and part not in _KEYWORDS
        else sql.Identifier(part).as_string()
        for part in parts
    )


_quoted = sql_name


def _superuser(role: str) -> RoleProblem:
    return RoleProblem(
        "superuser",
        f"role {role!r} is a superuser: superusers bypass row-level security. Fix: connect the "
        "application as a role created with NOSUPERUSER (keep the superuser for administration).",
    )


def _bypassrls(role: str) -> RoleProblem:
    return RoleProblem(
        "bypassrls",
        f"role {role!r} has BYPASSRLS. Fix: ALTER ROLE {_quoted(role)} NOBYPASSRLS, or connect "
        "as another role (system jobs may use a BYPASSRLS role; the service may not).",
    )


def _createrole(role: str) -> RoleProblem:
    return RoleProblem(
        "createrole",
        f"role {role!r} has CREATEROLE: it can create a role, grant it to itself and, through "
        "roles it administers, reach one that bypasses row-level security or owns a tenant "
        f"table. Fix: ALTER ROLE {_quoted(role)} NOCREATEROLE (create roles from the migration or "
        "administration role).",
    )


def _member_of_bypassing(role: str, other: str) -> RoleProblem:
    return RoleProblem(
        "member-of-bypassing-role",
        f"role {role!r} is a member (directly or through other roles) of {other!r}, a superuser "
        f"or BYPASSRLS role it can SET ROLE to and read every tenant's rows as. Fix: REVOKE "
        f"{_quoted(other)} FROM {_quoted(role)} (and from the roles between them).",
    )


def _member_of_server_role(role: str, other: str) -> RoleProblem:
    return RoleProblem(
        "member-of-server-access-role",
        f"role {role!r} is a member (directly or through other roles) of {other!r}, which "
        f"{_SERVER_ROLES[other]} as the operating-system user PostgreSQL runs as: it can read "
        "the tables' data files (or take over the server), every tenant's rows included, past "
        f"row-level security. Fix: REVOKE {_quoted(other)} FROM {_quoted(role)} (and from the "
        "roles between them).",
    )


def _member_of_createrole(role: str, other: str) -> RoleProblem:
    return RoleProblem(
        "createrole",
        f"role {role!r} is a member of {other!r}, which has CREATEROLE: after SET ROLE {other} it "
        "can create roles and grant them to itself. Fix: REVOKE "
        f"{_quoted(other)} FROM {_quoted(role)}, or ALTER ROLE {_quoted(other)} NOCREATEROLE.",
    )


def role_problems(connection: Connection) -> tuple[str, list[RoleProblem]]:
    """The connected role's name and what is wrong with its attributes and memberships."""
    row = connection.execute(_ROLE, {"server_roles": list(_SERVER_ROLES)}).one()
    role, superuser, bypassrls, createrole, bypassing_roles, createrole_roles, server_roles = row
    problems = []
    if superuser:
        problems.append(_superuser(role))
    if bypassrls:
        problems.append(_bypassrls(role))
    if superuser:
        return role, problems  # a superuser may act as every role: its memberships add nothing
    if createrole:
        problems.append(_createrole(role))
    problems.extend(_member_of_bypassing(role, other) for other in bypassing_roles)
    problems.extend(_member_of_createrole(role, other) for other in createrole_roles)
    problems.extend(_member_of_server_role(role, other) for other in server_roles)
    return role, problems
