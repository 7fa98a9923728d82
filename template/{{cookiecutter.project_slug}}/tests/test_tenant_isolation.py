"""Tenant isolation: each tenant sees and writes only its own rows, from the ORM and raw SQL.

The tests connect as the owner of the tables, which row-level security does not restrict when
it is a superuser; the raw-SQL tests therefore switch to a runtime role like the service's
(no superuser, no BYPASSRLS) for the rest of their transaction, which is rolled back.
"""

from __future__ import annotations

import secrets

import pytest
from pgkeel import CrossTenantWriteError, tenant_context
from psycopg import sql
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Project, Tenant, User


@pytest.fixture
def tenants(db_session: Session) -> tuple[Tenant, Tenant]:
    """Two tenants with one user each."""
    acme, globex = Tenant(name="Acme"), Tenant(name="Globex")
    db_session.add_all([acme, globex])
    db_session.flush()
    for tenant, email in ((acme, "ann@acme.test"), (globex, "gus@globex.test")):
        with tenant_context(tenant.id):
            db_session.add(User(email=email, display_name=email.split("@")[0]))
            db_session.flush()
    return acme, globex


def become_runtime_role(session: Session) -> None:
    """Act as a new role that row-level security applies to, until the transaction ends."""
    role = sql.Identifier(f"runtime_{secrets.token_hex(4)}")
    statements = [
        sql.SQL("CREATE ROLE {} NOSUPERUSER NOBYPASSRLS").format(role),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON users TO {}").format(role),
        sql.SQL("SET LOCAL ROLE {}").format(role),
    ]
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def test_the_orm_shows_each_tenant_only_its_users(
    db_session: Session, tenants: tuple[Tenant, Tenant]
) -> None:
    for tenant, email in zip(tenants, ("ann@acme.test", "gus@globex.test"), strict=True):
        with tenant_context(tenant.id):
            assert db_session.scalars(select(User.email)).all() == [email]


def test_raw_sql_shows_each_tenant_only_its_users(
    db_session: Session, tenants: tuple[Tenant, Tenant]
) -> None:
    become_runtime_role(db_session)
    for tenant, email in zip(tenants, ("ann@acme.test", "gus@globex.test"), strict=True):
        with tenant_context(tenant.id):
            emails = db_session.execute(text("select email from users")).scalars().all()
        assert emails == [email]


def test_raw_sql_without_a_tenant_sees_no_rows(
    db_session: Session, tenants: tuple[Tenant, Tenant]
) -> None:
    assert len(tenants) == 2
    become_runtime_role(db_session)
    count = db_session.execute(text("select count(*) from users")).scalar_one()
    assert count == 0


def test_writing_a_row_for_another_tenant_is_refused(
    db_session: Session, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, globex = tenants
    with tenant_context(acme.id):
        db_session.add(User(tenant_id=globex.id, email="eve@acme.test", display_name="Eve"))
        with pytest.raises(CrossTenantWriteError):
            db_session.flush()


def test_a_project_cannot_be_owned_by_another_tenants_user(
    db_session: Session, tenants: tuple[Tenant, Tenant]
) -> None:
    """The same-tenant key holds for every role, even one that bypasses row-level security."""
    acme, globex = tenants
    with tenant_context(globex.id):
        gus = db_session.scalars(select(User)).one()
    statement = text(
        "INSERT INTO projects (tenant_id, name, owner_id) VALUES (:tenant, 'Heist', :owner)"
    )
    values = {"tenant": acme.id, "owner": gus.id}
    with (
        pytest.raises(IntegrityError, match="fk_projects_tenant_id_owner_id"),
        db_session.begin_nested(),
    ):
        db_session.execute(statement, values)
    with tenant_context(acme.id):
        db_session.add(Project(name="Own", owner=db_session.scalars(select(User)).one()))
        db_session.flush()
