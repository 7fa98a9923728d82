"""Objects that read tenant tables with their owner's rights: views, materialized views, functions.

A view reads its tables as its owner (unless ``security_invoker``) and a ``SECURITY DEFINER``
function runs as its owner. When that owner bypasses row-level security (a superuser, a
``BYPASSRLS`` role, or the table's owner on a table without ``FORCE``), the runtime role reads
every tenant's rows through the object. A materialized view over a tenant table leaks whatever its
owner: it stores the rows of the tenant set at ``REFRESH`` (or of all tenants) and has no
row-level security, so every reader gets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from pgkeel.roles._problem import RoleProblem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection

    from pgkeel.roles._tables import Relation

_VIEWS = text(
    "SELECT v.oid, quote_ident(n.nspname) || '.' || quote_ident(v.relname), v.relkind = 'm', "
    "  pg_get_userbyid(v.relowner), o.rolsuper OR o.rolbypassrls, "
    "  ARRAY(SELECT r.oid FROM pg_roles r WHERE pg_has_role(v.relowner, r.oid, 'USAGE')), "
    "  coalesce((SELECT lower(option_value) FROM pg_options_to_table(v.reloptions) "
    "            WHERE option_name = 'security_invoker'), 'false'), "
    "  has_table_privilege(current_user, v.oid, 'SELECT'), "
    "  ARRAY(SELECT DISTINCT d.refobjid FROM pg_rewrite w JOIN pg_depend d "
    "        ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid "
    "        AND d.refclassid = 'pg_class'::regclass "
    "        WHERE w.ev_class = v.oid AND d.refobjid <> v.oid) "
    "FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace "
    "JOIN pg_roles o ON o.oid = v.relowner "
    "WHERE v.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)
_FUNCTIONS = text(
    "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner), o.rolsuper OR o.rolbypassrls, "
    "  ARRAY(SELECT r.oid FROM pg_roles r WHERE pg_has_role(p.proowner, r.oid, 'USAGE')) "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "JOIN pg_roles o ON o.oid = p.proowner "
    "WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND has_function_privilege(current_user, p.oid, 'EXECUTE') "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
    "                AND d.objid = p.oid AND d.deptype = 'e') "
    "ORDER BY 1"
)
_TRUE_WORDS = ("t", "tr", "tru", "true", "y", "ye", "yes", "on", "1")


@dataclass(frozen=True)
class _Owner:
    name: str
    bypasses: bool
    rights: frozenset[int]
    """The roles whose privileges the owner has (itself included): owning through them counts."""

    def bound_by(self, relation: Relation) -> bool:
        """Whether row-level security on ``relation`` applies to this owner."""
        if self.bypasses or not relation.enabled:
            return False
        return relation.forced or relation.owner_oid not in self.rights

    def why_not_bound(self, relation: Relation) -> str:
        """Why row-level security on ``relation`` does not apply to this owner, for messages."""
        if self.bypasses:
            return f"its owner {self.name!r} is a superuser or has BYPASSRLS"
        if not relation.enabled:
            return f"{relation.where!r} has no row-level security"
        return (
            f"its owner {self.name!r} owns {relation.where!r}, which lacks FORCE ROW LEVEL SECURITY"
        )


@dataclass(frozen=True)
class _View:
    oid: int
    name: str
    materialized: bool
    owner: _Owner
    invoker: bool
    selectable: bool
    reads: tuple[int, ...]


def _views(connection: Connection) -> dict[int, _View]:
    views = {}
    for (
        oid,
        name,
        materialized,
        owner,
        bypasses,
        rights,
        invoker,
        selectable,
        reads,
    ) in connection.execute(_VIEWS):
        views[oid] = _View(
            oid,
            name,
            materialized,
            _Owner(owner, bypasses, frozenset(rights)),
            not materialized and invoker in _TRUE_WORDS,
            selectable,
            tuple(reads),
        )
    return views


def _usable(views: dict[int, _View]) -> set[int]:
    """Views whose rows reach the runtime role: it may SELECT them, or a usable view reads them."""
    usable = {oid for oid, view in views.items() if view.selectable}
    todo = list(usable)
    while todo:
        for oid in views[todo.pop()].reads:
            if oid in views and oid not in usable:
                usable.add(oid)
                todo.append(oid)
    return usable


def _reads_through_views(view: _View, views: dict[int, _View]) -> set[int]:
    """Every relation ``view`` reads, directly or through other views of any kind."""
    found: set[int] = set()
    todo = list(view.reads)
    while todo:
        oid = todo.pop()
        if oid in found:
            continue
        found.add(oid)
        inner = views.get(oid)
        if inner is not None:
            todo.extend(inner.reads)
    return found


def _view_problem(view: _View, relation: Relation, role: str) -> RoleProblem:
    fix = (
        f"ALTER VIEW {view.name} SET (security_invoker = true), or ALTER VIEW {view.name} "
        "OWNER TO a role that forced row-level security binds (the migration role that owns the "
        "tables, with FORCE)"
    )
    return RoleProblem(
        "definer-view",
        f"view {view.name!r} reads {relation.where!r} (a tenant table, directly or through "
        f"other views) with its owner's rights, and {view.owner.why_not_bound(relation)}: role "
        f"{role!r} sees every tenant's rows through it. Fix: {fix} (see docs/security.md).",
    )


def _materialized_problem(view: _View, relation: Relation, role: str) -> RoleProblem:
    return RoleProblem(
        "materialized-view",
        f"materialized view {view.name!r} reads {relation.where!r} (a tenant table, directly "  # noqa: S608  # a message
        f"or through views), and role {role!r} may read it. A materialized view stores the rows "
        "REFRESH saw, with whatever tenant was set then (every tenant's rows if its owner "
        "bypasses row-level security), and has no row-level security of its own: every reader "
        "gets that content, whatever its tenant. Fix: read through a view WITH "
        "(security_invoker = true) instead (row-level security then applies to each reader), or "
        "keep the precomputed rows in a table with a tenant_id column and pgkeel's row-level "
        f"security (a TenantMixin model); else REVOKE SELECT ON {view.name} FROM {role} "
        "(see docs/security.md).",
    )


def view_problems(
    connection: Connection, role: str, relations: Iterable[Relation]
) -> list[RoleProblem]:
    """Views and materialized views that hand tenant rows to ``role`` past row-level security.

    A view is judged by its owner; a materialized view reading a tenant table is reported
    whatever its owner: its rows are those of the tenant set at ``REFRESH``, for every reader.
    """
    tenant = {relation.oid: relation for relation in relations}
    views = _views(connection)
    problems: list[RoleProblem] = []
    for oid in sorted(_usable(views), key=lambda o: views[o].name):
        view = views[oid]
        if view.materialized:
            read = sorted(_reads_through_views(view, views) & tenant.keys())
            problems.extend(_materialized_problem(view, tenant[o], role) for o in read[:1])
            continue
        if view.invoker:
            continue
        reads = sorted(set(view.reads) & tenant.keys())  # an invoker view inside checks the caller
        problems.extend(
            _view_problem(view, tenant[read], role)
            for read in reads
            if not view.owner.bound_by(tenant[read])
        )
    return problems


def _function_problem(name: str, why: str, role: str) -> RoleProblem:
    return RoleProblem(
        "definer-function",
        f"SECURITY DEFINER function {name} runs with its owner's rights, and {why}: whatever "
        f"tenant table it reads, it returns every tenant's rows to role {role!r}, which may "
        f"EXECUTE it. Fix: ALTER FUNCTION {name} SECURITY INVOKER; or ALTER FUNCTION {name} "
        "OWNER TO a role that forced row-level security binds; or REVOKE EXECUTE ON FUNCTION "
        f"{name} FROM PUBLIC, {role} (see docs/security.md).",
    )


def function_problems(
    connection: Connection, role: str, relations: Iterable[Relation]
) -> list[RoleProblem]:
    """``SECURITY DEFINER`` functions ``role`` may run whose owner bypasses row-level security."""
    relations = list(relations)
    problems: list[RoleProblem] = []
    for name, owner_name, bypasses, rights in connection.execute(_FUNCTIONS):
        owner = _Owner(owner_name, bypasses, frozenset(rights))
        unbound = [relation for relation in relations if not owner.bound_by(relation)]
        if unbound:
            problems.append(_function_problem(name, owner.why_not_bound(unbound[0]), role))
    return problems
