"""The runtime-role check names each reason row-level security would not bind the role.

Each bad set-up is built inside a transaction (roles and ownership changes roll back in
PostgreSQL) and inspected there with ``SET LOCAL ROLE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from pgkeel.roles import (
    RULES,
    RoleProblem,
    UnsafeRuntimeRoleError,
    check_runtime_role,
    runtime_role_problems,
)
from tests.isolation.conftest import Seed
from tests.isolation.models import Base


def _rules(connection: Connection) -> list[str]:
    return [problem.rule for problem in runtime_role_problems(connection, Base.metadata)]


@pytest.fixture
def admin(owner_engine: Engine, seeded: Seed) -> Iterator[Connection]:
    """A superuser connection in a transaction that is rolled back."""
    with owner_engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


def test_the_runtime_role_passes(runtime_engine: Engine) -> None:
    check_runtime_role(runtime_engine, Base.metadata)
    assert runtime_role_problems(runtime_engine) == []


def test_a_superuser_is_refused(owner_engine: Engine, seeded: Seed) -> None:
    with pytest.raises(UnsafeRuntimeRoleError) as caught:
        check_runtime_role(owner_engine, Base.metadata)
    message = str(caught.value)
    assert "[superuser]" in message
    assert "NOSUPERUSER" in message
    assert "[owner]" in message
    assert "'public.customers'" in message


def test_bypassrls_is_refused(admin: Connection) -> None:
    admin.execute(text("CREATE ROLE pgkeel_check_bypass NOSUPERUSER BYPASSRLS"))
    admin.execute(text("SET LOCAL ROLE pgkeel_check_bypass"))
    assert _rules(admin) == ["bypassrls"]


def test_membership_in_a_bypassing_role_is_refused(admin: Connection) -> None:
    admin.execute(text("CREATE ROLE pgkeel_check_system BYPASSRLS"))
    admin.execute(text("CREATE ROLE pgkeel_check_member IN ROLE pgkeel_check_system"))
    admin.execute(text("SET LOCAL ROLE pgkeel_check_member"))
    problems = runtime_role_problems(admin, Base.metadata)
    assert [p.rule for p in problems] == ["member-of-bypassing-role"]
    assert "REVOKE pgkeel_check_system FROM pgkeel_check_member" in problems[0].message


def test_owning_a_tenant_table_is_refused(admin: Connection) -> None:
    admin.execute(text("CREATE ROLE pgkeel_check_owner"))
    admin.execute(text("ALTER TABLE tags OWNER TO pgkeel_check_owner"))
    admin.execute(text("SET LOCAL ROLE pgkeel_check_owner"))
    problems = runtime_role_problems(admin, Base.metadata)
    assert [(p.rule, "'public.tags'" in p.message) for p in problems] == [("owner", True)]


def test_a_tenant_table_without_forced_rls_is_reported(
    admin: Connection, runtime_role: str
) -> None:
    admin.execute(text("ALTER TABLE invoices NO FORCE ROW LEVEL SECURITY"))
    admin.execute(text(f'SET LOCAL ROLE "{runtime_role}"'))
    problems = runtime_role_problems(admin)  # tables found in the catalog
    assert [p.rule for p in problems] == ["no-rls"]
    assert "'public.invoices' lacks FORCE ROW LEVEL SECURITY" in problems[0].message


SECURITY_PAGE = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_every_rule_has_a_row_in_the_security_checklist() -> None:
    checklist = SECURITY_PAGE.read_text().split("## The roles checklist", 1)[1].split("\n## ")[0]
    first_cells = [
        line.split(" | ")[0] for line in checklist.splitlines() if line.startswith("| `")
    ]
    listed = [rule for cell in first_cells for rule in re.findall(r"`([a-z-]+)`", cell)]
    assert sorted(listed) == sorted(RULES)


def test_a_problem_with_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown runtime-role rule 'definer-veiw'"):
        RoleProblem("definer-veiw", "a typo")
