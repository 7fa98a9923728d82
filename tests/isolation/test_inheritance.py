"""Inheritance of tenant and soft-delete models, and passive_deletes cascades under soft delete.

Single-table and joined-table subclasses of a tenant, soft-delete model can be defined, are
filtered by tenant and ``deleted_at`` like their base, and soft-deleted; the own table of a
joined subclass has row-level security that follows its parent's rows. Children behind a
``passive_deletes=True`` cascade (``ON DELETE CASCADE`` in the database) are soft-deleted with
their parent. Runs in a database of its own, as a runtime role and as the superuser.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, delete, select, text, update
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from pgkeel import SoftDeleteMixin, TenantMixin, create_sessionmaker, tenant_context
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.roles import runtime_role_problems
from pgkeel.types import TYPE_ANNOTATION_MAP, Str255
from tests.databases import models_database, runtime_role


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Document(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """A document of a tenant."""

    __tenant_foreign_key__ = None
    kind: Mapped[Str255]
    title: Mapped[Str255]
    sections: Mapped[list[Section]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )
    __mapper_args__: ClassVar = {"polymorphic_on": "kind", "polymorphic_identity": "document"}


class Memo(Document):
    """A memo: single-table inheritance, with a column of its own."""

    urgent: Mapped[bool | None]
    __mapper_args__: ClassVar = {"polymorphic_identity": "memo"}


class Report(Document):
    """A report: joined-table inheritance."""

    __tablename__ = "reports"
    id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    pages: Mapped[int]
    __mapper_args__: ClassVar = {"polymorphic_identity": "report"}


class Section(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A section of a document; the database deletes sections with their document."""

    __tenant_foreign_key__ = None
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    heading: Mapped[Str255]
    paragraphs: Mapped[list[Paragraph]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    document: Mapped[Document] = relationship(back_populates="sections")


class Paragraph(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A paragraph of a section: a second level of passive cascade."""

    __tenant_foreign_key__ = None
    section_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sections.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str]


TENANTS = (uuid.UUID(int=1), uuid.UUID(int=2))


@pytest.fixture(scope="module")
def database(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[URL]:
    name = f"{pgkeel_database_prefix}_inheritance"
    with models_database(pgkeel_server_url, name, Base.metadata) as url:
        _add_documents(url)
        role = f"{pgkeel_database_prefix}_inheritance_runtime"
        with runtime_role(pgkeel_server_url, url, role) as runtime_url:
            yield runtime_url


def _add_documents(url: URL) -> None:
    """Each tenant's memo, report, section and paragraph, written through pgkeel's hooks."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    for tenant in TENANTS:
        with tenant_context(tenant), sessions.begin() as session:
            memo = Memo(title="memo", urgent=True)
            report = Report(title="report", pages=3)
            section = Section(heading="intro", document=report)
            section.paragraphs.append(Paragraph(body="text"))
            session.add_all([memo, report, section])
    engine.dispose()


@pytest.fixture(scope="module", params=["runtime role", "superuser"])
def engine(request: pytest.FixtureRequest, database: URL) -> Iterator[Engine]:
    url = database if request.param == "runtime role" else database.set(username=None)
    if request.param == "superuser":
        url = request.getfixturevalue("pgkeel_server_url").set(database=database.database)
    engine = create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    return create_sessionmaker(engine)


def test_subclasses_are_filtered_by_tenant(sessions: sessionmaker) -> None:  # type: ignore[type-arg]
    with tenant_context(TENANTS[0]), sessions() as session:
        for model in (Memo, Report, Document):
            rows = session.scalars(select(model)).all()
            assert rows
            assert {row.tenant_id for row in rows} == {TENANTS[0]}
        assert session.scalars(select(Report.pages)).all() == [3]


def test_subclasses_are_soft_deleted_and_hidden(
    sessions: sessionmaker,
    database: URL,
    pgkeel_server_url: URL,  # type: ignore[type-arg]
) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        for model in (Memo, Report):
            session.delete(session.scalars(select(model)).one())
        session.flush()
        assert session.scalars(select(Memo)).all() == []
        assert session.scalars(select(Report)).all() == []
        assert session.scalars(select(Section)).all() == []  # the passive cascade followed
        assert session.scalars(select(Paragraph)).all() == []  # two levels down
        every = session.scalars(select(Document).execution_options(include_deleted=True)).all()
        assert len(every) == 2
        assert all(row.deleted_at is not None for row in every)
        paragraphs = session.scalars(select(Paragraph).execution_options(include_deleted=True))
        assert [row.deleted_at is not None for row in paragraphs] == [True]
        session.rollback()


def test_the_joined_subclass_table_follows_its_parent_rows(database: URL) -> None:
    engine = create_engine(database)  # the runtime role, raw SQL
    try:
        with tenant_context(TENANTS[0]), create_sessionmaker(engine)() as session:
            assert session.execute(text("SELECT count(*) FROM reports")).scalar_one() == 1
        with create_sessionmaker(engine)() as session:
            assert session.execute(text("SELECT count(*) FROM reports")).scalar_one() == 0
        assert runtime_role_problems(engine, Base.metadata) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("model", [Document, Report])
def test_a_bulk_delete_soft_deletes_the_passive_children(
    sessions: sessionmaker,  # type: ignore[type-arg]
    model: type[Document],
) -> None:
    with tenant_context(TENANTS[0]), sessions() as session:
        parent = session.scalars(select(Report)).one()
        section = session.scalars(select(Section)).one()  # in the identity map
        session.execute(delete(model).where(model.id == parent.id))
        assert session.scalars(select(Section)).all() == []
        assert session.scalars(select(Paragraph)).all() == []
        assert section.deleted_at is not None  # the object in the session is told
        stamps = session.execute(
            text(
                "SELECT d.deleted_at, s.deleted_at, p.deleted_at FROM documents d "
                "JOIN sections s ON s.document_id = d.id JOIN paragraphs p ON p.section_id = s.id "
                "WHERE d.id = :id"
            ),
            {"id": parent.id},
        ).one()
        assert stamps[0] is not None
        assert len(set(stamps)) == 1  # one timestamp for every level
        with tenant_context(TENANTS[1]):  # the other tenant's rows are untouched
            assert session.scalars(select(Section)).one().deleted_at is None
            assert session.scalars(select(Paragraph)).one().deleted_at is None
        session.rollback()


def test_an_update_by_primary_key_of_a_joined_subclass_keeps_to_live_rows_of_the_tenant(
    sessions: sessionmaker,  # type: ignore[type-arg]
) -> None:
    with tenant_context(TENANTS[1]), sessions() as session:
        theirs = session.scalars(select(Report.id)).one()
    rows = text("SELECT d.id, d.title, r.pages FROM documents d JOIN reports r USING (id)")
    with tenant_context(TENANTS[0]), sessions() as session:
        own = session.scalars(select(Report.id)).one()
        written = [
            {"id": own, "title": "mine", "pages": 40},
            {"id": theirs, "title": "x", "pages": 41},
        ]
        session.execute(update(Report), written)  # one UPDATE of each table per row
        stored = {row.id: (row.title, row.pages) for row in session.execute(rows)}
        assert stored.pop(own) == ("mine", 40)
        assert set(stored.values()) <= {("report", 3)}  # where the role sees the other row
        session.execute(delete(Report).where(Report.id == own))  # a soft delete
        session.execute(update(Report), [{"id": own, "title": "gone", "pages": 42}])
        assert {row.id: (row.title, row.pages) for row in session.execute(rows)}[own] == (
            "mine",
            40,
        )
        session.rollback()
