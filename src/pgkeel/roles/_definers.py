"""Objects that reach tenant tables with their owner's rights: views, rules, functions, triggers.

A view reads its tables as its owner (unless ``security_invoker``), a rule (on a table, or on a
view, ``security_invoker`` or not) runs its actions as the owner of its table, and a ``SECURITY
DEFINER`` function runs as its owner, also when a trigger calls it. When that owner bypasses
row-level security (a superuser, a ``BYPASSRLS`` role, or the table's owner on a table without
``FORCE``), the runtime role reads or writes every tenant's rows through the object. A
materialized view over a tenant table leaks whatever its owner: it stores the rows of the tenant
set at ``REFRESH`` (or of all tenants) and has no row-level security, so every reader gets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from pgkeel.roles._problem import RoleProblem
from pgkeel.roles._tables import held_privileges

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection

    from pgkeel.roles._tables import Relation

_USES = ("SELECT", "INSERT", "UPDATE", "DELETE")
"""Privileges through which a relation's rules run: reading a view, or writing a relation."""
_RULE_READS = (
    "ARRAY(SELECT DISTINCT d.refobjid FROM pg_rewrite w JOIN pg_depend d "
    "      ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid "
    "      AND d.refclassid = 'pg_class'::regclass "
    "      WHERE w.ev_class = v.oid AND d.refobjid <> v.oid AND {which})"
)
_OTHER_RULES = "w.rulename <> '_RETURN' AND w.ev_enabled IN ('O', 'A')"
_VIEWS_SQL = (
    "SELECT v.oid, quote_ident(n.nspname) || '.' || quote_ident(v.relname), v.relkind, "
    "  pg_get_userbyid(v.relowner), o.rolsuper OR o.rolbypassrls, "
    "  ARRAY(SELECT r.oid FROM pg_roles r WHERE pg_has_role(v.relowner, r.oid, 'USAGE')), "
    "  coalesce((SELECT lower(option_value) FROM pg_options_to_table(v.reloptions) "
    "            WHERE option_name = 'security_invoker'), 'false'), "
    "  {privileges}, {return_reads}, "
    "  ARRAY(SELECT quote_ident(w.rulename) FROM pg_rewrite w "
    "        WHERE w.ev_class = v.oid AND {other_rules} ORDER BY 1), "
    "  {other_reads} "
    "FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace "
    "JOIN pg_roles o ON o.oid = v.relowner "
    "WHERE (v.relkind IN ('v', 'm') OR v.relhasrules) "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)
_VIEWS = text(
    _VIEWS_SQL.format(
        privileges=held_privileges("v.oid", _USES),
        return_reads=_RULE_READS.format(which="w.rulename = '_RETURN'"),
        other_rules=_OTHER_RULES,
        other_reads=_RULE_READS.format(which=_OTHER_RULES),
    )
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
_WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")
_EVENTS = (
    "array_remove(ARRAY[CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END, "
    "CASE WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' END, "
    "CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END, "
    "CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END]::text[], NULL)"
)
"""The events a trigger fires on, from ``pg_trigger.tgtype``'s bits."""
_TRIGGERS_SQL = (
    "SELECT quote_ident(t.tgname), quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
    "  p.oid::regprocedure::text, pg_get_userbyid(p.proowner), o.rolsuper OR o.rolbypassrls, "
    "  ARRAY(SELECT r.oid FROM pg_roles r WHERE pg_has_role(p.proowner, r.oid, 'USAGE')), "
    "  ARRAY(SELECT unnest({events}) INTERSECT SELECT unnest({privileges}) ORDER BY 1), "
    "  EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid "
    "          WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
    "          AND d.refobjid = c.oid AND w.ev_class <> c.oid "
    "          AND cardinality({through}) > 0) "
    "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_roles o ON o.oid = p.proowner "
    "WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'A') AND p.prosecdef "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "ORDER BY 2, 1"
)
_TRIGGERS = text(
    _TRIGGERS_SQL.format(
        events=_EVENTS,
        privileges=held_privileges("c.oid", _WRITES),
        through=held_privileges("w.ev_class", _WRITES[:3]),
    )
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
    """A view, a materialized view, or another relation with rules, as the catalog describes it."""

    oid: int
    name: str
    kind: str
    owner: _Owner
    invoker: bool
    privileges: tuple[str, ...]
    """Which of ``SELECT, INSERT, UPDATE, DELETE`` the runtime role holds on it (or a column)."""
    reads: tuple[int, ...]
    """The relations its ``SELECT`` rule (a view's query) reads."""
    rules: tuple[str, ...]
    """Its other rules (``ON INSERT``, ``ON UPDATE``, ``ON DELETE``) that are enabled."""
    rule_reads: tuple[int, ...]
    """The relations those rules read or write."""

    @property
    def materialized(self) -> bool:
        """Whether it is a materialized view."""
        return self.kind == "m"

    @property
    def usable(self) -> bool:
        """Whether the runtime role may use it itself (a materialized view: only read it)."""
        return "SELECT" in self.privileges if self.materialized else bool(self.privileges)


def _views(connection: Connection) -> dict[int, _View]:
    views = {}
    for oid, name, kind, owner, bypasses, rights, invoker, *lists in connection.execute(_VIEWS):
        privileges, reads, rules, rule_reads = (tuple(values) for values in lists)
        views[oid] = _View(
            oid,
            name,
            kind,
            _Owner(owner, bypasses, frozenset(rights)),
            kind == "v" and invoker in _TRUE_WORDS,
            privileges,
            reads,
            rules,
            rule_reads,
        )
    return views


def _usable(views: dict[int, _View]) -> set[int]:
    """Relations whose rules reach the runtime role: through its privileges, or other such ones."""
    usable = {oid for oid, view in views.items() if view.usable}
    todo = list(usable)
    while todo:
        view = views[todo.pop()]
        for oid in (*view.reads, *view.rule_reads):
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


def _reach(view: _View, role: str) -> str:
    """How ``role`` reaches ``view``, and what it does with every tenant's rows there."""
    if not view.privileges:
        return f"role {role!r} reaches it through another view or rule"
    does = "sees" if view.privileges == ("SELECT",) else "changes"
    if "SELECT" in view.privileges and len(view.privileges) > 1:
        does = "sees and changes"
    return f"role {role!r}, which has {', '.join(view.privileges)} on it, {does}"


def _revoke(view: _View, role: str) -> str:
    if not view.privileges:
        return ""
    return f"; or REVOKE {', '.join(view.privileges)} ON {view.name} FROM {role}"


def _view_problem(view: _View, relation: Relation, role: str) -> RoleProblem:
    fix = (
        f"ALTER VIEW {view.name} SET (security_invoker = true), or ALTER VIEW {view.name} "
        "OWNER TO a role that forced row-level security binds (the migration role that owns the "
        f"tables, with FORCE){_revoke(view, role)}"
    )
    return RoleProblem(
        "definer-view",
        f"view {view.name!r} reads {relation.where!r} ({relation.what}, directly or through "
        f"other views) with its owner's rights, and {view.owner.why_not_bound(relation)}: "
        f"{_reach(view, role)} every tenant's rows through it. Fix: {fix} (see docs/security.md).",
    )


_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "f": "foreign table"}


def _rule_problem(view: _View, relation: Relation, role: str) -> RoleProblem:
    kind = _KINDS.get(view.kind, "relation")
    named = ", ".join(view.rules)
    drop = "; ".join(f"DROP RULE {rule} ON {view.name}" for rule in view.rules)
    invoker = " (security_invoker applies to a view's query, not to its rules)" * view.invoker
    alter = "VIEW" if view.kind == "v" else "TABLE"
    return RoleProblem(
        "definer-rule",
        f"rule {named} on {kind} {view.name!r} reaches {relation.where!r} ({relation.what}) with "
        f"the rights of {view.name!r}'s owner{invoker}, and {view.owner.why_not_bound(relation)}: "
        f"{_reach(view, role)} every tenant's rows through it. Fix: {drop} (a SECURITY INVOKER "
        f"trigger does the same with the caller's rights); or ALTER {alter} {view.name} OWNER TO "
        f"a role that forced row-level security binds{_revoke(view, role)} "
        "(see docs/security.md).",
    )


def _materialized_problem(view: _View, relation: Relation, role: str) -> RoleProblem:
    return RoleProblem(
        "materialized-view",
        f"materialized view {view.name!r} reads {relation.where!r} ({relation.what}, directly "  # noqa: S608  # a message
        f"or through views), and role {role!r} may read it. A materialized view stores the rows "
        "REFRESH saw, with whatever tenant was set then (every tenant's rows if its owner "
        "bypasses row-level security), and has no row-level security of its own: every reader "
        "gets that content, whatever its tenant. Fix: read through a view WITH "
        "(security_invoker = true) instead (row-level security then applies to each reader), or "
        "keep the precomputed rows in a table with a tenant_id column and pgkeel's row-level "
        f"security (a TenantMixin model); else REVOKE SELECT ON {view.name} FROM {role} "
        "(see docs/security.md).",
    )


def _unbound(view: _View, reads: Iterable[int], tenant: dict[int, Relation]) -> list[Relation]:
    """The tenant relations among ``reads`` that row-level security does not bind its owner on."""
    found = sorted(set(reads) & tenant.keys())
    return [tenant[oid] for oid in found if not view.owner.bound_by(tenant[oid])]


def _one_view_problems(view: _View, tenant: dict[int, Relation], role: str) -> list[RoleProblem]:
    rules = [_rule_problem(view, r, role) for r in _unbound(view, view.rule_reads, tenant)]
    if view.kind != "v" or view.invoker:  # an invoker view inside checks the caller
        return rules
    return [_view_problem(view, r, role) for r in _unbound(view, view.reads, tenant)] + rules


def view_problems(
    connection: Connection, role: str, relations: Iterable[Relation]
) -> list[RoleProblem]:
    """Views, materialized views and rules that show ``role`` tenant rows past row-level security.

    A view or a rule is judged by its owner; a materialized view reading a tenant table is
    reported whatever its owner: its rows are those of the tenant set at ``REFRESH``, for every
    reader.
    """
    tenant = {relation.oid: relation for relation in relations}
    views = _views(connection)
    problems: list[RoleProblem] = []
    for oid in sorted(_usable(views), key=lambda o: views[o].name):
        view = views[oid]
        if view.materialized:
            read = sorted(_reads_through_views(view, views) & tenant.keys())
            problems.extend(_materialized_problem(view, tenant[o], role) for o in read[:1])
        else:
            problems.extend(_one_view_problems(view, tenant, role))
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


@dataclass(frozen=True)
class _Trigger:
    name: str
    table: str
    function: str
    owner: _Owner
    fires_on: tuple[str, ...]
    """The trigger's events that the runtime role may cause (it holds their privileges)."""
    written_through: bool
    """Whether a view or a rule that the runtime role may write writes the table."""


def _trigger_problem(trigger: _Trigger, why: str, role: str) -> RoleProblem:
    if trigger.fires_on:
        when = f"on role {role!r}'s {', '.join(trigger.fires_on)} there"
    else:
        when = f"when role {role!r} writes it through a view or rule"
    function = trigger.function
    return RoleProblem(
        "definer-trigger",
        f"trigger {trigger.name} on {trigger.table!r} runs SECURITY DEFINER function {function} "
        f"with its owner's rights, and {why}: it fires {when}, with no need of EXECUTE on the "
        "function (REVOKE EXECUTE does not stop a trigger), and whatever tenant table it reads "
        f"or writes, it reaches every tenant's rows. Fix: ALTER FUNCTION {function} SECURITY "
        f"INVOKER; or ALTER FUNCTION {function} OWNER TO a role that forced row-level security "
        f"binds; or DROP TRIGGER {trigger.name} ON {trigger.table} (see docs/security.md).",
    )


def _triggers(connection: Connection) -> list[_Trigger]:
    triggers = []
    for name, table, function, owner, bypasses, rights, fires_on, through in connection.execute(
        _TRIGGERS
    ):
        owner_rights = _Owner(owner, bypasses, frozenset(rights))
        triggers.append(_Trigger(name, table, function, owner_rights, tuple(fires_on), through))
    return triggers


def trigger_problems(
    connection: Connection, role: str, relations: Iterable[Relation]
) -> list[RoleProblem]:
    """Triggers that ``role``'s writes fire and that run a bypassing owner's definer function."""
    relations = list(relations)
    problems: list[RoleProblem] = []
    for trigger in _triggers(connection):
        if not (trigger.fires_on or trigger.written_through):
            continue
        unbound = [relation for relation in relations if not trigger.owner.bound_by(relation)]
        if unbound:
            why = trigger.owner.why_not_bound(unbound[0])
            problems.append(_trigger_problem(trigger, why, role))
    return problems
