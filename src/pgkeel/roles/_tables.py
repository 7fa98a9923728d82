"""The tenant tables, their partitions and ``INHERITS`` children, as the runtime role meets them.

The tenant tables include the own tables of joined-table subclasses of tenant models: they have
no ``tenant_id``, and their policy shows a row when its parent row is visible. Each must have
row-level security enabled and forced, pgkeel's policy unchanged and no other policy, must not
be owned by the runtime role, and must not give it privileges that ignore row-level security
(``TRUNCATE``) or reach past it (``TRIGGER``, ``REFERENCES``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, ForeignKey, MetaData, Table, text

from pgkeel.roles._attributes import sql_name
from pgkeel.roles._problem import RoleProblem
from pgkeel.tenancy import (
    INHERITED_TENANT_INFO,
    POLICY_NAME,
    TENANT_COLUMN,
    inherited_policy,
    is_tenant_table,
    tenant_policy,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

_ROOTS_FROM_NAMES = (
    "SELECT c.oid, v.oid AS via, w.col, w.pcol FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN unnest(CAST(:schemas AS text[]), CAST(:names AS text[]), "
    "  CAST(:parent_schemas AS text[]), CAST(:parents AS text[]), CAST(:columns AS text[]), "
    "  CAST(:parent_columns AS text[])) AS w(nsp, rel, pnsp, prel, col, pcol) "
    "  ON c.relname = w.rel AND n.nspname = coalesce(nullif(w.nsp, ''), current_schema()) "
    "LEFT JOIN (pg_class v JOIN pg_namespace vn ON vn.oid = v.relnamespace) "
    "  ON v.relname = w.prel AND vn.nspname = coalesce(nullif(w.pnsp, ''), current_schema()) "
    "  AND v.relkind IN ('r', 'p') "
    "WHERE c.relkind IN ('r', 'p')"
)
_HAS_TENANT_COLUMN = (
    "EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = :column "
    "AND NOT a.attisdropped)"
)
_JOINS_SQL = (
    "SELECT f.conrelid AS oid, f.confrelid AS via, k.attname::text AS col, "
    "  pk.attname::text AS pcol "
    "FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid "
    "JOIN pg_index i ON i.indrelid = f.conrelid AND i.indisprimary AND i.indnatts = 1 "
    "JOIN pg_attribute k ON k.attrelid = f.conrelid AND k.attnum = i.indkey[0] "
    "JOIN pg_attribute pk ON pk.attrelid = f.confrelid AND pk.attnum = f.confkey[1] "
    "WHERE f.contype = 'f' AND f.conkey = ARRAY[i.indkey[0]] AND c.relkind IN ('r', 'p') "
    "AND (c.relrowsecurity OR c.relforcerowsecurity OR EXISTS (SELECT 1 FROM pg_policy p "
    "     WHERE p.polrelid = c.oid AND p.polname = :policy)) "
    "AND NOT {has_tenant_column}"
)
"""Tables whose primary key is a foreign key, and that have row-level security or pgkeel's policy.

Such a table whose key refers to a tenant table's rows is the own table of a joined-table subclass.
"""
_ROOTS_FROM_CATALOG_SQL = (
    "WITH RECURSIVE tenant AS ("
    "  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "  WHERE {has_tenant_column} "
    "  AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "  AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    "), joins AS ({joins}), "
    "joined(oid, via, col, pcol) AS ("
    "  SELECT j.* FROM joins j WHERE j.via IN (SELECT oid FROM tenant)"
    "  UNION SELECT j.* FROM joins j JOIN joined d ON j.via = d.oid"
    ") "
    "SELECT oid, NULL::oid AS via, NULL::text AS col, NULL::text AS pcol FROM tenant "
    "UNION ALL (SELECT DISTINCT ON (oid) * FROM joined ORDER BY oid, via)"
)
_ROOTS_FROM_CATALOG = _ROOTS_FROM_CATALOG_SQL.format(
    has_tenant_column=_HAS_TENANT_COLUMN,
    joins=_JOINS_SQL.format(has_tenant_column=_HAS_TENANT_COLUMN),
)
_RELATIONS = (
    "WITH RECURSIVE tree(oid, parent, via, col, pcol) AS ("
    "  SELECT oid, 0::oid, via, col, pcol FROM ({roots}) AS roots"
    "  UNION SELECT i.inhrelid, i.inhparent, t.via, t.col, t.pcol FROM pg_inherits i "
    "  JOIN tree t ON i.inhparent = t.oid"
    ") "
    "SELECT c.oid, n.nspname, c.relname, c.relispartition, "
    "  (SELECT pn.nspname || '.' || pc.relname FROM pg_class pc "
    "   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE pc.oid = t.parent), "
    "  c.relowner, pg_get_userbyid(c.relowner), pg_has_role(current_user, c.relowner, 'MEMBER'), "
    "  c.relrowsecurity, c.relforcerowsecurity, "
    "  has_table_privilege(current_user, c.oid, 'TRUNCATE'), "
    "  has_table_privilege(current_user, c.oid, 'TRIGGER'), "
    "  has_any_column_privilege(current_user, c.oid, 'REFERENCES'), "
    "  t.col, t.pcol, vn.nspname, v.relname, v.oid::regclass::text "
    "FROM tree t JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_class v ON v.oid = t.via LEFT JOIN pg_namespace vn ON vn.oid = v.relnamespace "
    "ORDER BY n.nspname, c.relname, t.parent"
)
_POLICIES = text(
    "SELECT polrelid, polname, polcmd, polpermissive, polroles = '{0}'::oid[], "
    "  coalesce(pg_get_expr(polqual, polrelid), ''), "
    "  coalesce(pg_get_expr(polwithcheck, polrelid), '') "
    "FROM pg_policy WHERE polrelid = ANY(CAST(:oids AS oid[])) ORDER BY polrelid, polname"
)
_COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
_HAS = {True: "has_any_column_privilege", False: "has_table_privilege"}
"""A privilege that columns may hold counts when held on any column: it reaches those columns."""
_COMMANDS = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}
_SCRATCH = MetaData()
"""Holds the stand-in ``Table`` objects ``tenant_policy`` needs to spell the expected policy."""
_NOISE = re.compile(r"::text|\bas\s+\"?nullif\"?|[\s()\"]", re.IGNORECASE)


@dataclass(frozen=True)
class JoinedParent:
    """The table whose rows the rows of a joined-table subclass table follow, and their key."""

    column: str
    """The subclass table's key column, a foreign key to ``parent_column``."""
    parent_column: str
    schema: str | None
    """The parent table's schema and name; ``None`` when the database has no such table."""
    name: str | None
    regclass: str | None
    """The parent's name as the catalog prints it in an expression (schema only if not visible)."""

    def condition(self) -> str:
        """The expression of pgkeel's policy, spelled as ``pg_get_expr`` prints it."""
        return f"{self.column} IN (SELECT {self.name}.{self.parent_column} FROM {self.regclass})"  # noqa: S608  # compared, never run

    def policy(self, table: str, schema: str) -> tuple[str, str]:
        """``USING`` and ``WITH CHECK`` of pgkeel's policy on ``schema.table``, as written."""
        if self.name is None:
            raise ValueError("the parent table is missing: there is no policy to spell")
        scratch = MetaData()
        parent = Table(self.name, scratch, Column(self.parent_column), schema=self.schema)
        key: Column[Any] = Column(self.column, ForeignKey(parent.c[self.parent_column]))
        policy = inherited_policy(Table(table, scratch, key, schema=schema), parent)
        return policy.using, policy.with_check


@dataclass(frozen=True)
class Relation:
    """A tenant table, a partition or child of one, or a parent of one, as in the catalog."""

    oid: int
    schema: str
    name: str
    is_partition: bool
    parent: str | None
    owner_oid: int
    owner: str
    may_act_as_owner: bool
    enabled: bool
    forced: bool
    truncate: bool
    trigger: bool
    references: bool
    joined: JoinedParent | None = None
    """Set for the own table of a joined-table subclass (or a partition or child of one)."""
    ancestor: bool = False
    """A table a tenant relation inherits from, not one itself: a query on it reaches their rows."""

    @property
    def where(self) -> str:
        """``schema.name``, as messages name it."""
        return f"{self.schema}.{self.name}"

    @property
    def what(self) -> str:
        """What it is to tenant data, as messages say it."""
        return "a parent of a tenant table" if self.ancestor else "a tenant table"


@dataclass(frozen=True)
class Policy:
    """A row-level security policy of a relation, its expressions as the catalog prints them."""

    name: str
    command: str
    permissive: bool
    public: bool
    using: str
    with_check: str


def held_privileges(relation_oid: str, privileges: tuple[str, ...]) -> str:
    """SQL for the array of ``privileges`` the current user holds on a relation (or a column of it).

    ``relation_oid`` is the SQL expression of the relation's oid; ``privileges`` are constants.
    """
    checks = ", ".join(
        f"CASE WHEN {_HAS[privilege in _COLUMN_PRIVILEGES]}(current_user, {relation_oid}, "
        f"'{privilege}') THEN '{privilege}' END"
        for privilege in privileges
    )
    return f"array_remove(ARRAY[{checks}]::text[], NULL)"


def _normalised(expression: str) -> str:
    """An expression without casts to text, parentheses, quotes and spaces, lower case.

    The catalog keeps a policy's expression in PostgreSQL's own spelling
    (``current_setting('app.tenant_id'::text, true)``, ``AS "nullif"``); compared this way it
    matches the expression pgkeel writes, and an expression with another meaning never does.
    """
    return _NOISE.sub("", expression).lower()


def _is_tenant_relation(table: Table) -> bool:
    """A tenant table, or the own table of a joined-table subclass of a tenant model."""
    return is_tenant_table(table) or INHERITED_TENANT_INFO in table.info


def _joined_key(table: Table) -> tuple[Table | None, str | None, str | None]:
    """The parent table of a joined-table subclass table, and the key columns that join them."""
    parent = table.metadata.tables.get(table.info.get(INHERITED_TENANT_INFO, ""))
    if parent is None:
        return None, None, None
    for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
        if fk.column.table is parent:
            return parent, fk.parent.name, fk.column.name
    return parent, None, None


def _roots(metadata: MetaData | None) -> tuple[str, dict[str, Any]]:
    if metadata is None:
        return _ROOTS_FROM_CATALOG, {"column": TENANT_COLUMN, "policy": POLICY_NAME}
    tables = [t for t in metadata.sorted_tables if _is_tenant_relation(t)]
    keys = [(None, None, None) if is_tenant_table(t) else _joined_key(t) for t in tables]
    return _ROOTS_FROM_NAMES, {
        "schemas": [t.schema or "" for t in tables],
        "names": [t.name for t in tables],
        "parent_schemas": [
            parent.schema or "" if parent is not None else None for parent, *_ in keys
        ],
        "parents": [parent.name if parent is not None else None for parent, *_ in keys],
        "columns": [column for _, column, _ in keys],
        "parent_columns": [column for *_, column in keys],
    }


def _relation(row: Sequence[Any]) -> Relation:
    *fields, column, parent_column, schema, name, regclass = row
    joined = None if column is None else JoinedParent(column, parent_column, schema, name, regclass)
    return replace(Relation(*fields), joined=joined)


def tenant_relations(connection: Connection, metadata: MetaData | None) -> list[Relation]:
    """The tenant tables (of ``metadata``, or every table with ``tenant_id``) and their children.

    The own tables of joined-table subclasses count: of ``metadata``, those of subclasses of
    tenant models; without it, tables whose primary key is a foreign key to a tenant table's
    rows and that have row-level security or pgkeel's policy.
    """
    roots, params = _roots(metadata)
    found: dict[int, Relation] = {}
    for row in connection.execute(text(_RELATIONS.format(roots=roots)), params):
        relation = _relation(row)
        if relation.oid not in found or relation.parent is not None:
            found[relation.oid] = relation  # a child is named as one, even if it is a root too
    return list(found.values())


def missing_tables(metadata: MetaData | None, relations: list[Relation]) -> list[RoleProblem]:
    """Tenant tables of ``metadata`` that the database does not have."""
    if metadata is None:
        return []
    present = {(r.schema, r.name) for r in relations} | {(None, r.name) for r in relations}
    return [
        RoleProblem("no-rls", f"tenant table {table.name!r} does not exist. Fix: migrate.")
        for table in metadata.sorted_tables
        if _is_tenant_relation(table) and (table.schema, table.name) not in present
    ]


def policies_of(connection: Connection, relations: list[Relation]) -> dict[int, list[Policy]]:
    """The policies of each of ``relations``, by oid."""
    found: dict[int, list[Policy]] = {r.oid: [] for r in relations}
    rows = connection.execute(_POLICIES, {"oids": [r.oid for r in relations]})
    for oid, *fields in rows:
        found[oid].append(Policy(*fields))
    return found


def _label(relation: Relation) -> str:
    if relation.parent is None:
        if relation.joined is not None and relation.joined.name is not None:
            return (
                f"tenant table {relation.where!r} (the own table of a joined-table subclass, its "
                f"rows follow those of '{relation.joined.schema}.{relation.joined.name}')"
            )
        return f"tenant table {relation.where!r}"
    kind = "partition" if relation.is_partition else "child (INHERITS)"
    return f"{kind} {relation.where!r} of tenant table {relation.parent!r}"


def _expected_policy(relation: Relation) -> tuple[str, str]:
    """``USING`` and ``WITH CHECK`` of pgkeel's policy on ``relation``, as pgkeel writes them."""
    if relation.joined is not None and relation.joined.name is not None:
        return relation.joined.policy(relation.name, relation.schema)
    policy = tenant_policy(Table(relation.name, _SCRATCH, schema=relation.schema))
    return policy.using, policy.with_check


def _policy_sql(relation: Relation) -> str:
    if relation.joined is not None and relation.joined.name is None:
        return "run the migrations (its parent table is missing)"
    using, with_check = _expected_policy(relation)
    return (
        f"CREATE POLICY {POLICY_NAME} ON {relation.where} FOR ALL USING ({using}) "
        f"WITH CHECK ({with_check})"
    )


def _owner_problem(role: str, relation: Relation) -> list[RoleProblem]:
    if not relation.may_act_as_owner:
        return []
    owns = "owns" if relation.owner == role else f"is a member of {relation.owner!r}, which owns"
    return [
        RoleProblem(
            "owner",
            f"role {role!r} {owns} {_label(relation)}: an owner can disable row-level security. "
            f"Fix: if {role!r} is the role that runs migrations, connect the service as the "
            "runtime role instead (DATABASE_URL; a service made from pgkeel's template: the "
            "DATABASE_URL `make db` prints); if it is meant to be the runtime role, let the "
            "migration role own the tables and GRANT SELECT, INSERT, UPDATE, DELETE ON "
            f"{sql_name(relation.schema, relation.name)} TO {sql_name(role)} (pgkeel's "
            "docs/multi-tenancy.md).",
        )
    ]


def _rls_problem(relation: Relation, pgkeel_policy: Policy | None) -> list[RoleProblem]:
    missing = [
        label
        for label, present in (
            ("ENABLE ROW LEVEL SECURITY", relation.enabled),
            ("FORCE ROW LEVEL SECURITY", relation.forced),
            (f"policy {POLICY_NAME!r}", pgkeel_policy is not None),
        )
        if not present
    ]
    if not missing:
        return []
    if relation.parent is None:
        fix = "run the migrations (alembic upgrade head), or create_all from pgkeel models."
        why = ""
    else:
        fix = f"ALTER TABLE {relation.where} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"
        fix += "" if pgkeel_policy is not None else f"; {_policy_sql(relation)}"
        why = (
            ": queried by its own name it applies its own row-level security, not its parent's, "
            "and shows every tenant's rows"
        )
    return [
        RoleProblem("no-rls", f"{_label(relation)} lacks {', '.join(missing)}{why}. Fix: {fix}")
    ]


def is_pgkeel_policy(relation: Relation, policy: Policy) -> bool:
    """Whether ``policy`` is the one pgkeel gives ``relation``, for every command and role."""
    if relation.joined is not None:  # the catalog names the parent's key column with its table
        if relation.joined.name is None:
            return False
        using = with_check = relation.joined.condition()
    else:
        using, with_check = _expected_policy(relation)
    return (
        policy.command == "*"
        and policy.permissive
        and policy.public
        and _normalised(policy.using) == _normalised(using)
        and _normalised(policy.with_check) == _normalised(with_check)
    )


def _altered_policy(relation: Relation, policy: Policy) -> RoleProblem:
    shape = (
        f"{'PERMISSIVE' if policy.permissive else 'RESTRICTIVE'} FOR "
        f"{_COMMANDS.get(policy.command, policy.command)}"
        f"{'' if policy.public else ' TO some roles'} USING ({policy.using}) "
        f"WITH CHECK ({policy.with_check or '-'})"
    )
    return RoleProblem(
        "altered-policy",
        f"policy {POLICY_NAME!r} on {_label(relation)} is not pgkeel's: it reads {shape}, so "
        "it may show or accept rows of other tenants (or of none). Fix: DROP POLICY "
        f"{POLICY_NAME} ON {relation.where}; {_policy_sql(relation)} (or run the migrations).",
    )


def _extra_policy(relation: Relation, policy: Policy) -> RoleProblem:
    if policy.permissive:
        why = (
            "permissive policies are OR-ed with pgkeel's, so every row it lets through is "
            "visible to every tenant"
        )
    else:
        why = "a restrictive policy only narrows pgkeel's, but tenant tables take no other policy"
    kind = "PERMISSIVE" if policy.permissive else "RESTRICTIVE"
    return RoleProblem(
        "extra-policy",
        f"{_label(relation)} has policy {policy.name!r} ({kind} "
        f"FOR {_COMMANDS.get(policy.command, policy.command)} USING ({policy.using or '-'})) "
        f"besides pgkeel's {POLICY_NAME!r}: {why}. Fix: DROP POLICY {policy.name} ON "
        f"{relation.where} (put extra rules in the application or in a view over the table).",
    )


def _policy_problems(relation: Relation, policies: list[Policy]) -> list[RoleProblem]:
    problems: list[RoleProblem] = []
    pgkeel_policy = next((p for p in policies if p.name == POLICY_NAME), None)
    problems.extend(_rls_problem(relation, pgkeel_policy))
    if pgkeel_policy is not None and not is_pgkeel_policy(relation, pgkeel_policy):
        problems.append(_altered_policy(relation, pgkeel_policy))
    problems.extend(_extra_policy(relation, p) for p in policies if p.name != POLICY_NAME)
    return problems


_PRIVILEGES = (
    (
        "TRUNCATE",
        "truncate",
        "TRUNCATE ignores row-level security and empties the table for every tenant",
    ),
    (
        "TRIGGER",
        "trigger",
        "a trigger it creates runs on every tenant's writes and sees their rows",
    ),
    (
        "REFERENCES",
        "references",
        (
            "a foreign key to the table from a table it creates is checked without row-level "
            "security, so it can probe which ids other tenants have"
        ),
    ),
)


def _privilege_problems(role: str, relation: Relation) -> list[RoleProblem]:
    if relation.may_act_as_owner:
        return []  # an owner has every privilege; the owner finding says what to do
    return [
        RoleProblem(
            "privilege",
            f"role {role!r} has {privilege} on {_label(relation)}: {why}. Fix: REVOKE "
            f"{privilege} ON {relation.where} FROM {role} (and from PUBLIC or the role it "
            "inherits it from); the runtime role needs SELECT, INSERT, UPDATE, DELETE only.",
        )
        for privilege, field, why in _PRIVILEGES
        if getattr(relation, field)
    ]


def table_problems(
    connection: Connection, role: str, relations: list[Relation], *, superuser: bool
) -> list[RoleProblem]:
    """What is wrong with each tenant relation, for ``role`` (privileges: unless a superuser)."""
    policies = policies_of(connection, relations)
    problems: list[RoleProblem] = []
    for relation in relations:
        problems.extend(_owner_problem(role, relation))
        problems.extend(_policy_problems(relation, policies[relation.oid]))
        if not superuser:
            problems.extend(_privilege_problems(role, relation))
    return problems
