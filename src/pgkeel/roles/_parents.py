"""The tables tenant relations inherit from: a query on a parent returns its children's rows.

PostgreSQL applies the row-level security of the table a query names, not that of the rows'
table: ``SELECT`` (or ``UPDATE``, ``DELETE``) on an ``INHERITS`` parent or a partitioned table
reaches every child's rows under the parent's own policies. A parent of a tenant table that is
not a tenant table itself must therefore isolate on its own (row-level security enabled and
forced, no policy but pgkeel's: with none it shows no rows), or be out of the runtime role's reach.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import text

from pgkeel.roles._problem import RoleProblem
from pgkeel.roles._tables import Relation, held_privileges, is_pgkeel_policy, policies_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from pgkeel.roles._tables import Policy

_REACHING = ("SELECT", "UPDATE", "DELETE")
"""What reaches the children's rows through a parent (``INSERT`` writes the parent's own)."""
_NAME = (
    "(SELECT bn.nspname || '.' || b.relname FROM pg_class b "
    "JOIN pg_namespace bn ON bn.oid = b.relnamespace WHERE b.oid = {oid})"
)
_ANCESTORS_SQL = (
    "WITH RECURSIVE up(oid, child, below) AS ("
    "  SELECT inhparent, inhrelid, inhrelid FROM pg_inherits "
    "  WHERE inhrelid = ANY(CAST(:oids AS oid[]))"
    "  UNION SELECT i.inhparent, i.inhrelid, u.below FROM pg_inherits i JOIN up u "
    "  ON i.inhrelid = u.oid"
    ") "
    "SELECT DISTINCT ON (n.nspname, c.relname) c.oid, n.nspname, c.relname, c.relispartition, "
    "  NULL::text, c.relowner, pg_get_userbyid(c.relowner), "
    "  pg_has_role(current_user, c.relowner, 'MEMBER'), c.relrowsecurity, c.relforcerowsecurity, "
    "  has_table_privilege(current_user, c.oid, 'TRUNCATE'), "
    "  has_table_privilege(current_user, c.oid, 'TRIGGER'), "
    "  has_any_column_privilege(current_user, c.oid, 'REFERENCES'), "
    "  {below}, {child}, "
    "  c.relkind = 'p', "
    "  {privileges} "
    "FROM up u JOIN pg_class c ON c.oid = u.oid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE NOT c.oid = ANY(CAST(:oids AS oid[])) "
    "ORDER BY n.nspname, c.relname, 14, 15"
)

_ANCESTORS = text(
    _ANCESTORS_SQL.format(
        below=_NAME.format(oid="u.below"),
        child=_NAME.format(oid="u.child"),
        privileges=held_privileges("c.oid", _REACHING),
    )
)


@dataclass(frozen=True)
class Ancestor:
    """A table that a tenant relation inherits from, directly or not, and is not one itself."""

    relation: Relation
    below: str
    """``schema.name`` of a tenant relation under it."""
    child: str
    """The table right under it on the way to ``below`` (``below`` itself if a direct child)."""
    partitioned: bool
    privileges: tuple[str, ...]
    """Which of ``SELECT``, ``UPDATE``, ``DELETE`` the runtime role holds on it (or a column)."""


def tenant_ancestors(connection: Connection, relations: list[Relation]) -> list[Ancestor]:
    """The parents, grandparents, ... of ``relations`` that are not among them."""
    rows = connection.execute(_ANCESTORS, {"oids": [relation.oid for relation in relations]})
    return [
        Ancestor(
            replace(Relation(*fields), ancestor=True), below, child, partitioned, tuple(privileges)
        )
        for *fields, below, child, partitioned, privileges in rows
    ]


def _gaps(ancestor: Ancestor, policies: list[Policy]) -> list[str]:
    """What keeps the parent's own row-level security from isolating tenants."""
    relation = ancestor.relation
    missing = [
        label
        for label, present in (
            ("ENABLE ROW LEVEL SECURITY", relation.enabled),
            ("FORCE ROW LEVEL SECURITY", relation.forced),
        )
        if not present
    ]
    gaps = [f"lacks {', '.join(missing)}"] if missing else []
    gaps.extend(
        f"has policy {policy.name!r}, which is not pgkeel's"
        for policy in policies
        if not is_pgkeel_policy(relation, policy)
    )
    return gaps


def _ancestor_problem(role: str, ancestor: Ancestor, gaps: list[str]) -> RoleProblem:
    parent = ancestor.relation.where
    kind = "partitioned table" if ancestor.partitioned else "parent (INHERITS)"
    if ancestor.partitioned:
        detach = f"ALTER TABLE {parent} DETACH PARTITION {ancestor.child}"
    else:
        detach = f"ALTER TABLE {ancestor.child} NO INHERIT {parent}"
    return RoleProblem(
        "inherits-parent",
        f"{kind} {parent!r} of tenant table {ancestor.below!r} is no tenant table itself, and "
        f"role {role!r} has {', '.join(ancestor.privileges)} on it: a query on a parent reaches "
        "its children's rows under the parent's row-level security, not theirs, and "
        f"{parent!r} {' and '.join(gaps)}, so role {role!r} reaches every tenant's rows of "
        f"{ancestor.below!r} through it. Fix: ALTER TABLE {parent} ENABLE ROW LEVEL SECURITY, "
        "FORCE ROW LEVEL SECURITY, with no policy but pgkeel's (with none it shows no rows); or "
        f"REVOKE SELECT, UPDATE, DELETE ON {parent} FROM {role}; or {detach} "
        "(see docs/security.md).",
    )


def ancestor_problems(
    connection: Connection, role: str, ancestors: list[Ancestor]
) -> list[RoleProblem]:
    """Parents of tenant relations that ``role`` may query and whose own policies do not isolate."""
    reached = [ancestor for ancestor in ancestors if ancestor.privileges]
    policies = policies_of(connection, [ancestor.relation for ancestor in reached])
    problems: list[RoleProblem] = []
    for ancestor in reached:
        gaps = _gaps(ancestor, policies[ancestor.relation.oid])
        if gaps:
            problems.append(_ancestor_problem(role, ancestor, gaps))
    return problems
