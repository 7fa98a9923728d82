"""Check that the application's database role is one row-level security actually binds.

Row-level security does not apply to superusers and to roles with ``BYPASSRLS``, and the owner of a
table may switch it off. The runtime role of a service must therefore be none of these: tables
belong to a separate migration role, and the runtime role only has ``SELECT, INSERT, UPDATE,
DELETE`` on them (see docs/multi-tenancy.md). ``check_runtime_role`` says which rule is broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from pgkeel.errors import PgkeelError
from pgkeel.tenancy import POLICY_NAME, is_tenant_table

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Connection

_ROLE = text(
    "SELECT current_user, r.rolsuper, r.rolbypassrls, "
    "ARRAY(SELECT p.rolname FROM pg_roles p WHERE p.oid <> r.oid "
    "      AND (p.rolsuper OR p.rolbypassrls) "
    "      AND pg_has_role(r.oid, p.oid, 'MEMBER') ORDER BY p.rolname) "
    "FROM pg_roles r WHERE r.rolname = current_user"
)
_TABLE = text(
    "SELECT pg_get_userbyid(c.relowner), pg_has_role(current_user, c.relowner, 'MEMBER'), "
    "c.relrowsecurity, c.relforcerowsecurity, "
    "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = :policy) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema())"
)
_TENANT_TABLES = text(
    "SELECT n.nspname, c.relname FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped "
    "WHERE c.relkind IN ('r', 'p') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
)


class UnsafeRuntimeRoleError(PgkeelError):
    """The runtime role is not bound by row-level security; the message lists each reason."""


@dataclass(frozen=True)
class RoleProblem:
    """One reason row-level security would not protect tenant data on this role."""

    rule: str
    """``superuser``, ``bypassrls``, ``member-of-bypassing-role``, ``owner``, ``no-rls``."""
    message: str
    """What is wrong, where, and the SQL or step that fixes it."""


def _role_problems(connection: Connection) -> tuple[str, list[RoleProblem]]:
    role, superuser, bypassrls, bypassing_roles = connection.execute(_ROLE).one()
    problems = []
    if superuser:
        problems.append(
            RoleProblem(
                "superuser",
                f"role {role!r} is a superuser: superusers bypass row-level security. Fix: "
                "connect the application as a role created with NOSUPERUSER (keep the superuser "
                "for administration).",
            )
        )
    if bypassrls:
        problems.append(
            RoleProblem(
                "bypassrls",
                f"role {role!r} has BYPASSRLS. Fix: ALTER ROLE {role} NOBYPASSRLS, or connect "
                "as another role (system jobs may use a BYPASSRLS role; the service may not).",
            )
        )
    problems.extend(
        RoleProblem(
            "member-of-bypassing-role",
            f"role {role!r} is a member of {other!r}, a superuser or BYPASSRLS role it can "
            f"SET ROLE to. Fix: REVOKE {other} FROM {role}.",
        )
        for other in bypassing_roles
    )
    return role, problems


def _table_problems(
    connection: Connection, role: str, schema: str | None, name: str
) -> list[RoleProblem]:
    row = connection.execute(
        _TABLE, {"name": name, "schema": schema, "policy": POLICY_NAME}
    ).one_or_none()
    where = f"{schema}.{name}" if schema else name
    if row is None:
        return [RoleProblem("no-rls", f"tenant table {where!r} does not exist. Fix: migrate.")]
    owner, may_act_as_owner, enabled, forced, has_policy = row
    problems = []
    if may_act_as_owner:
        relation = "owns" if owner == role else f"is a member of {owner!r}, which owns"
        problems.append(
            RoleProblem(
                "owner",
                f"role {role!r} {relation} table {where!r}: an owner can disable row-level "
                f"security. Fix: let the migration role own the tables and GRANT SELECT, INSERT, "
                f"UPDATE, DELETE ON {where} TO {role} (see docs/multi-tenancy.md).",
            )
        )
    if not (enabled and forced and has_policy):
        missing = [
            label
            for label, present in (
                ("ENABLE ROW LEVEL SECURITY", enabled),
                ("FORCE ROW LEVEL SECURITY", forced),
                (f"policy {POLICY_NAME!r}", has_policy),
            )
            if not present
        ]
        problems.append(
            RoleProblem(
                "no-rls",
                f"tenant table {where!r} lacks {', '.join(missing)}. Fix: run the migrations "
                "(alembic upgrade head), or create_all from pgkeel models.",
            )
        )
    return problems


def _tenant_tables(
    connection: Connection, metadata: MetaData | None
) -> list[tuple[str | None, str]]:
    if metadata is None:
        return [(schema, name) for schema, name in connection.execute(_TENANT_TABLES)]
    tables: list[Table] = [t for t in metadata.sorted_tables if is_tenant_table(t)]
    return [(table.schema, table.name) for table in tables]


def runtime_role_problems(
    bind: Engine | Connection, metadata: MetaData | None = None
) -> list[RoleProblem]:
    """Every reason the connected role is not bound by row-level security on the tenant tables.

    The tenant tables are those of ``metadata`` (pgkeel tenant models), or, without it, every
    table of the database with a ``tenant_id`` column.
    """
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return runtime_role_problems(connection, metadata)
    role, problems = _role_problems(bind)
    for schema, name in _tenant_tables(bind, metadata):
        problems.extend(_table_problems(bind, role, schema, name))
    return problems


def check_runtime_role(bind: Engine | Connection, metadata: MetaData | None = None) -> None:
    """Raise ``UnsafeRuntimeRoleError`` listing every problem ``runtime_role_problems`` finds.

    Call it once at start-up with the application's engine: a service that runs as a superuser
    or as the tables' owner would pass every test and still leak across tenants.
    """
    problems = runtime_role_problems(bind, metadata)
    if problems:
        lines = "\n".join(f"- [{problem.rule}] {problem.message}" for problem in problems)
        raise UnsafeRuntimeRoleError(
            f"The database role of this engine is not bound by row-level security:\n{lines}"
        )
