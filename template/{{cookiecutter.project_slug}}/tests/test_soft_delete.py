"""Soft delete: a deleted user leaves every query, keeps its row, and frees its email."""

from __future__ import annotations
{% if cookiecutter.__tenants == "yes" %}
from collections.abc import Iterator
{% endif %}
import pytest
from pgkeel import hard_delete{% if cookiecutter.__tenants == "yes" %}, tenant_context{% endif %}
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import {% if cookiecutter.__tenants == "yes" %}Tenant, {% endif %}User
{% if cookiecutter.__tenants == "yes" %}

@pytest.fixture(autouse=True)
def acting_tenant(db_session: Session) -> Iterator[Tenant]:
    """Every test of this module acts for one tenant."""
    tenant = Tenant(name="Acme")
    db_session.add(tenant)
    db_session.flush()
    with tenant_context(tenant.id):
        yield tenant
{% endif %}

def _count_rows(session: Session, email: str) -> int:
    """Rows of ``users`` with this email, deleted or not, as raw SQL sees them."""
    query = text("select count(*) from users where email = :email")
    return int(session.execute(query, {"email": email}).scalar_one())


def test_a_deleted_user_leaves_queries_but_keeps_its_row(db_session: Session) -> None:
    user = User(email="ann@example.com", display_name="Ann")
    db_session.add(user)
    db_session.flush()
    db_session.delete(user)
    db_session.flush()
    assert db_session.scalars(select(User)).all() == []
    assert _count_rows(db_session, "ann@example.com") == 1


def test_a_deleted_user_frees_its_email(db_session: Session) -> None:
    first = User(email="bob@example.com", display_name="Bob")
    db_session.add(first)
    db_session.flush()
    db_session.delete(first)
    db_session.flush()
    db_session.add(User(email="bob@example.com", display_name="Bob again"))
    db_session.flush()
    assert _count_rows(db_session, "bob@example.com") == 2


def test_two_live_users_cannot_share_an_email(db_session: Session) -> None:
    db_session.add(User(email="cy@example.com", display_name="Cy"))
    db_session.flush()
    db_session.add(User(email="cy@example.com", display_name="Another Cy"))
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_hard_delete_removes_the_row(db_session: Session) -> None:
    user = User(email="di@example.com", display_name="Di")
    db_session.add(user)
    db_session.flush()
    hard_delete(db_session, user)
    db_session.flush()
    assert _count_rows(db_session, "di@example.com") == 0
