"""``column_property()``, ``query_expression(default_expr=...)`` subqueries: filtered or refused.

The mapper compiles them into every query of their model. Built from mapped classes they get
the tenant and ``deleted_at`` filters of the hooks (and their opt-outs); built from ``Table``
objects nothing filters them, so pgkeel refuses the read where a filter is missing. Each case
runs as the runtime role, a BYPASSRLS role and the superuser, in a database of its own whose
entries are planted across tenants (tenant 1's entries under tenant 0's account).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    column_property,
    joinedload,
    mapped_column,
    query_expression,
    relationship,
    sessionmaker,
)

from pgkeel import (
    ALL_TENANTS,
    SoftDeleteMixin,
    TenantMixin,
    UnfilteredReadError,
    create_sessionmaker,
    tenant_context,
)
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP, Str255
from tests.databases import models_database, runtime_role


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Account(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """An account of a tenant; its counts are mapper-level subqueries over entries."""

    __tenant_foreign_key__ = None
    name: Mapped[Str255]


class Entry(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """An entry booked on an account."""

    __tenant_foreign_key__ = None
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int]
    account: Mapped[Account] = relationship()


def _entries_of_account(*columns: object) -> object:
    query = select(*columns).where(Entry.account_id == Account.id).correlate_except(Entry)  # type: ignore[call-overload]
    return query.scalar_subquery()


Account.entry_count = column_property(_entries_of_account(func.count(Entry.id)))  # type: ignore[attr-defined]
Account.deferred_count = column_property(  # type: ignore[attr-defined]
    _entries_of_account(func.count(Entry.id)), deferred=True
)
Account.entry_total = query_expression(  # type: ignore[attr-defined]
    default_expr=_entries_of_account(func.coalesce(func.sum(Entry.amount), 0))
)


class Board(UUIDPrimaryKeyMixin, Base):
    """Shared by all tenants; its count of entries is written against the Table object."""

    title: Mapped[Str255]
    entries_seen: Mapped[int] = column_property(
        select(func.count()).select_from(Entry.__table__).scalar_subquery()
    )


class Panel(UUIDPrimaryKeyMixin, Base):
    """Shared by all tenants; its count of entries is written against the mapped class."""

    title: Mapped[Str255]
    entries_seen: Mapped[int] = column_property(select(func.count(Entry.id)).scalar_subquery())


TENANTS = (uuid.UUID(int=10), uuid.UUID(int=11))
LIVE, DELETED, PLANTED = 2, 1, 3  # tenant 0's live and deleted entries; tenant 1's on them


@pytest.fixture(scope="module")
def database(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[URL]:
    name = f"{pgkeel_database_prefix}_mapper_subqueries"
    with models_database(pgkeel_server_url, name, Base.metadata) as url:
        _seed(url)
        yield url


def _seed(url: URL) -> None:
    """Tenant 0's account with live and deleted entries; tenant 1's entries planted on it."""
    engine = create_engine(url)
    with Session(engine) as session:
        account = Account(tenant_id=TENANTS[0], name="a0")
        session.add_all([account, Account(tenant_id=TENANTS[1], name="a1")])
        session.add(Board(title="board"))
        session.add(Panel(title="panel"))
        session.flush()
        rows = [(TENANTS[0], None)] * LIVE + [(TENANTS[0], func.now())] * DELETED
        rows += [(TENANTS[1], None)] * PLANTED
        for tenant, deleted in rows:
            entry = Entry(tenant_id=tenant, account_id=account.id, amount=10)
            session.add(entry)
            session.flush()
            entry.deleted_at = deleted
        session.commit()
    engine.dispose()


@pytest.fixture(scope="module", params=["runtime", "bypassrls", "superuser"])
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def engine(
    role: str, database: URL, pgkeel_server_url: URL, pgkeel_database_prefix: str
) -> Iterator[Engine]:
    if role == "superuser":
        engine = create_engine(database)
        yield engine
        engine.dispose()
        return
    name = f"{pgkeel_database_prefix}_subq_{role}"
    attributes = "BYPASSRLS" if role == "bypassrls" else "NOBYPASSRLS"
    with runtime_role(pgkeel_server_url, database, name, attributes) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return create_sessionmaker(engine)


def _account(session: Session, *options: object, **execution: object) -> Account:
    statement = select(Account).where(Account.name == "a0").options(*options)  # type: ignore[arg-type]
    return session.scalars(statement.execution_options(**execution)).one()


def test_a_column_property_counts_only_own_live_rows(sessions: sessionmaker[Session]) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        account = _account(session)
        assert account.entry_count == LIVE  # type: ignore[attr-defined]
        assert account.entry_total == LIVE * 10  # type: ignore[attr-defined]
        assert account.deferred_count == LIVE  # type: ignore[attr-defined]  # a column load
        assert session.scalars(select(Account.entry_count)).all() == [LIVE]  # type: ignore[attr-defined]


def test_a_column_property_through_a_joined_eager_load(sessions: sessionmaker[Session]) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        entries = session.scalars(select(Entry).options(joinedload(Entry.account))).unique()
        assert {entry.account.entry_count for entry in entries} == {LIVE}  # type: ignore[attr-defined]


def test_include_deleted_counts_own_deleted_rows(sessions: sessionmaker[Session]) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        account = _account(session, include_deleted=True)
        assert account.entry_count == LIVE + DELETED  # type: ignore[attr-defined]
        assert account.entry_total == (LIVE + DELETED) * 10  # type: ignore[attr-defined]


def test_all_tenants_counts_every_tenants_rows(role: str, sessions: sessionmaker[Session]) -> None:
    if role == "runtime":
        pytest.skip("ALL_TENANTS needs a role that bypasses row-level security")
    with tenant_context(ALL_TENANTS), sessions() as session:
        assert _account(session).entry_count == LIVE + PLANTED  # type: ignore[attr-defined]
        every = _account(session, include_deleted=True)
        assert every.entry_count == LIVE + DELETED + PLANTED  # type: ignore[attr-defined]


def test_a_mapped_class_subquery_on_a_shared_model_is_filtered(
    sessions: sessionmaker[Session],
) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        assert session.scalars(select(Panel)).one().entries_seen == LIVE
    with sessions() as session:  # no tenant: no tenant rows
        assert session.scalars(select(Panel)).one().entries_seen == 0


def test_a_table_subquery_is_refused_naming_the_fix(sessions: sessionmaker[Session]) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        with pytest.raises(UnfilteredReadError, match=r"Board\.entries_seen") as caught:
            session.scalars(select(Board)).all()
        assert "select(func.count(Model.id))" in str(caught.value)
        assert "'entries'" in str(caught.value)


def test_a_table_subquery_with_the_opt_outs(role: str, sessions: sessionmaker[Session]) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        statement = select(Board).execution_options(include_deleted=True)
        if role == "runtime":  # row-level security filters the tenant
            assert session.scalars(statement).one().entries_seen == LIVE + DELETED
        else:
            with pytest.raises(UnfilteredReadError, match="ALL_TENANTS"):
                session.scalars(statement).all()
    if role != "runtime":
        with tenant_context(ALL_TENANTS), sessions() as session:
            board = session.scalars(statement).one()
            assert board.entries_seen == LIVE + DELETED + PLANTED
