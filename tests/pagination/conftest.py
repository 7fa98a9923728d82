"""A database of tenant notes for the pagination tests, read and written as a runtime role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from pgkeel import SoftDeleteMixin, TenantMixin, create_sessionmaker
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP, Str255
from tests.databases import models_database, runtime_role


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, Base):
    """An organisation whose notes are paged."""

    name: Mapped[Str255]


class Note(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base):
    """A tenant's note: soft-deletable, ordered by (created_at, id) or by its unique title."""

    title: Mapped[Str255] = mapped_column(unique=True)
    rank: Mapped[int]
    nick: Mapped[Str255 | None] = mapped_column(unique=True, default=None)
    """Unique where set: a key that two rows may share (both NULL)."""
    remarks: Mapped[list[Remark]] = relationship(back_populates="note")


class Remark(UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base):
    """A remark on a note: many per note, so a join from notes repeats a note's row."""

    note_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notes.id"))
    body: Mapped[Str255]
    note: Mapped[Note] = relationship(back_populates="remarks")


@pytest.fixture(scope="session")
def pagination_db(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[URL]:
    """A database with the notes table, created by its owner (the server's superuser)."""
    with models_database(
        pgkeel_server_url, f"{pgkeel_database_prefix}_pagination", Base.metadata
    ) as url:
        yield url


@pytest.fixture(scope="session")
def runtime_engine(
    pgkeel_server_url: URL, pagination_db: URL, pgkeel_database_prefix: str
) -> Iterator[Engine]:
    """An engine on a role that row-level security binds (no superuser, no BYPASSRLS)."""
    role = f"{pgkeel_database_prefix}_pager"
    with runtime_role(pgkeel_server_url, pagination_db, role) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="session")
def owner_engine(pagination_db: URL) -> Iterator[Engine]:
    """An engine as the tables' owner, to create tenants and clean up."""
    engine = create_engine(pagination_db)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(runtime_engine: Engine, owner_engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions with pgkeel's hooks as the runtime role; the tables are emptied afterwards."""
    yield create_sessionmaker(runtime_engine)
    with owner_engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE remarks, notes, tenants")
