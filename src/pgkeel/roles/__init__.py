"""Check that the application's database role is one row-level security actually binds.

Row-level security does not apply to superusers and to roles with ``BYPASSRLS``, and the owner of a
table may switch it off. The runtime role of a service must therefore be none of these: tables
belong to a separate migration role, and the runtime role only has ``SELECT, INSERT, UPDATE,
DELETE`` on them (see docs/multi-tenancy.md and docs/security.md). The check also looks past the
role itself: objects that reach tenant tables with a bypassing owner's rights (views, rules,
``SECURITY DEFINER`` functions and the triggers that call them), materialized views, policies
other than pgkeel's, privileges that ignore or reach past row-level security, ``CREATEROLE``,
membership in roles that read the server's files, partitions or ``INHERITS`` children of tenant
tables, the parents they inherit from, the own tables of joined-table subclasses, and user
mappings that let it read through a foreign table in another session. ``check_runtime_role``
says which rule is broken, where, and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from pgkeel.errors import PgkeelError
from pgkeel.roles._attributes import role_problems
from pgkeel.roles._definers import function_problems, trigger_problems, view_problems
from pgkeel.roles._foreign import foreign_problems
from pgkeel.roles._parents import ancestor_problems, tenant_ancestors
from pgkeel.roles._problem import RULES, RoleProblem
from pgkeel.roles._tables import missing_tables, table_problems, tenant_relations

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

__all__ = [
    "RULES",
    "RoleProblem",
    "UnsafeRuntimeRoleError",
    "check_runtime_role",
    "runtime_role_problems",
]


class UnsafeRuntimeRoleError(PgkeelError):
    """The runtime role is not bound by row-level security; the message lists each reason."""


def runtime_role_problems(
    bind: Engine | Connection, metadata: MetaData | None = None
) -> list[RoleProblem]:
    """Every reason the connected role is not bound by row-level security on the tenant tables.

    The tenant tables are those of ``metadata`` (pgkeel tenant models and the own tables of their
    joined-table subclasses), or, without it, every table of the database with a ``tenant_id``
    column and the subclass tables keyed to their rows; their partitions and ``INHERITS``
    children are checked too, and so are the tables they inherit from.
    """
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return runtime_role_problems(connection, metadata)
    role, problems = role_problems(bind)
    relations = tenant_relations(bind, metadata)
    problems.extend(missing_tables(metadata, relations))
    superuser = any(problem.rule == "superuser" for problem in problems)
    problems.extend(table_problems(bind, role, relations, superuser=superuser))
    ancestors = tenant_ancestors(bind, relations)
    if not superuser:
        problems.extend(ancestor_problems(bind, role, ancestors))
    reaching = [*relations, *(ancestor.relation for ancestor in ancestors)]
    problems.extend(view_problems(bind, role, reaching))
    problems.extend(function_problems(bind, role, reaching))
    problems.extend(trigger_problems(bind, role, reaching))
    if not superuser:
        owners = (relation.owner_oid for relation in reaching)
        problems.extend(foreign_problems(bind, role, owners))
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
