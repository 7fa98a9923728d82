"""A soft-delete child that a ``delete-orphan`` cascade removes is soft-deleted, never deleted.

SQLAlchemy finds orphans during the flush (a child removed from its parent's collection, a
collection replaced, a one-to-one reference cleared or replaced), after ``before_flush``; without
pgkeel's orphan pass it emitted a real ``DELETE`` for a soft-delete model. The row stays, keeps
its parent's foreign key and gets ``deleted_at``, and the soft delete cascades down as
``session.delete`` does. ``hard_delete`` still removes an orphan; orphans that are not soft-delete
models are deleted as SQLAlchemy deletes them. Runs in a database of its own, on a runtime role
and on a role that bypasses row-level security; the stored rows are read by the superuser.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, event, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from pgkeel import SoftDeleteMixin, TenantMixin, create_sessionmaker, hard_delete, tenant_context
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import UUIDPrimaryKeyMixin
from pgkeel.types import TYPE_ANNOTATION_MAP, Str255
from tests.databases import models_database, runtime_role


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Album(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A parent with every kind of ``delete-orphan`` relationship."""

    __tenant_foreign_key__ = None
    title: Mapped[Str255]
    tracks: Mapped[list[Track]] = relationship(
        back_populates="album", cascade="all, delete-orphan", order_by="Track.title"
    )
    notes: Mapped[list[Note]] = relationship(cascade="all, delete-orphan")  # no back_populates
    cover: Mapped[Cover | None] = relationship(cascade="all, delete-orphan")  # one-to-one
    stickers: Mapped[list[Sticker]] = relationship(cascade="all, delete-orphan")


class Track(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A soft-delete child, with a soft-delete child of its own."""

    __tenant_foreign_key__ = None
    album_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("albums.id"), index=True)
    title: Mapped[Str255]
    album: Mapped[Album] = relationship(back_populates="tracks")
    credits: Mapped[list[Credit]] = relationship(cascade="all, delete-orphan")


class Credit(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A grandchild: soft-deleted with its orphaned track."""

    __tenant_foreign_key__ = None
    track_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tracks.id"), index=True)
    name: Mapped[Str255]


class Note(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A soft-delete child whose parent's relationship has no ``back_populates``."""

    __tenant_foreign_key__ = None
    album_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("albums.id"), index=True)
    body: Mapped[str]


class Cover(UUIDPrimaryKeyMixin, TenantMixin, SoftDeleteMixin, Base):
    """A soft-delete child of a one-to-one relationship."""

    __tenant_foreign_key__ = None
    album_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("albums.id"), index=True)
    image: Mapped[Str255]


class Sticker(UUIDPrimaryKeyMixin, TenantMixin, Base):
    """A child that is not a soft-delete model: an orphan is deleted for real."""

    __tenant_foreign_key__ = None
    album_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("albums.id"), index=True)
    text: Mapped[Str255]


TENANT = uuid.UUID(int=7)
ROLES = {"runtime": "NOBYPASSRLS", "bypassrls": "BYPASSRLS"}


@pytest.fixture(scope="module")
def database(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[URL]:
    name = f"{pgkeel_database_prefix}_orphans"
    with models_database(pgkeel_server_url, name, Base.metadata) as url:
        yield url


@pytest.fixture(scope="module")
def owner(database: URL) -> Iterator[Engine]:
    """The superuser that owns the tables: reads rows as stored, past every filter and policy."""
    engine = create_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module", params=list(ROLES))
def engine(
    request: pytest.FixtureRequest,
    database: URL,
    pgkeel_server_url: URL,
    pgkeel_database_prefix: str,
) -> Iterator[Engine]:
    """The runtime role, then a role that bypasses row-level security."""
    role = f"{pgkeel_database_prefix}_orphans_{request.param}"
    with runtime_role(pgkeel_server_url, database, role, ROLES[request.param]) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A hooked session of the tenant; each test commits rows of its own."""
    with tenant_context(TENANT), create_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def deletes(engine: Engine) -> Iterator[list[str]]:
    """The ``DELETE`` statements the engine sends."""
    sent: list[str] = []

    def record(*args: object) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("DELETE"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def _album(session: Session) -> Album:
    """An album with two tracks (one credited), a note, a cover and a sticker, committed."""
    album = Album(title="blue")
    first = Track(title="a", credits=[Credit(name="ann")])
    album.tracks = [first, Track(title="b")]
    album.notes = [Note(body="liner")]
    album.cover = Cover(image="blue.png")
    album.stickers = [Sticker(text="new")]
    session.add(album)
    session.commit()
    return album


def _stored(owner: Engine, table: str, ident: uuid.UUID) -> dict[str, object] | None:
    """The row as stored, or None when it was deleted for real."""
    with owner.connect() as connection:
        row = connection.execute(
            text(f"SELECT * FROM {table} WHERE id = :id"),  # a fixed table name
            {"id": ident},
        ).first()
    return None if row is None else dict(row._mapping)  # public Row API


def _soft_deleted(owner: Engine, table: str, ident: uuid.UUID) -> dict[str, object]:
    row = _stored(owner, table, ident)
    assert row is not None, f"{table} {ident} was deleted for real"
    assert row["deleted_at"] is not None
    assert row["is_deleted"] is True
    return row


def _live(owner: Engine, table: str, ident: uuid.UUID) -> dict[str, object]:
    row = _stored(owner, table, ident)
    assert row is not None
    assert row["deleted_at"] is None
    return row


def test_a_child_removed_from_a_collection_is_soft_deleted(
    session: Session, owner: Engine, deletes: list[str]
) -> None:
    album = _album(session)
    track = album.tracks[0]
    album.tracks.remove(track)
    session.commit()
    row = _soft_deleted(owner, "tracks", track.id)
    assert row["album_id"] == album.id  # the row keeps its parent
    assert deletes == []
    assert [t.title for t in album.tracks] == ["b"]  # read again, filtered
    assert session.scalars(select(Track).where(Track.id == track.id)).first() is None


def test_the_soft_delete_cascades_down_from_the_orphan(session: Session, owner: Engine) -> None:
    album = _album(session)
    track = album.tracks[0]
    credit = track.credits[0]
    album.tracks.remove(track)
    session.commit()
    _soft_deleted(owner, "credits", credit.id)
    _soft_deleted(owner, "tracks", track.id)


def test_a_replaced_collection_soft_deletes_the_children_it_drops(
    session: Session, owner: Engine, deletes: list[str]
) -> None:
    album = _album(session)
    old = [track.id for track in album.tracks]
    album.tracks = [Track(title="c")]
    session.commit()
    for ident in old:
        _soft_deleted(owner, "tracks", ident)
    assert deletes == []
    assert [t.title for t in album.tracks] == ["c"]


def test_a_child_whose_parent_reference_is_cleared_is_soft_deleted(
    session: Session, owner: Engine
) -> None:
    album = _album(session)
    track = album.tracks[0]
    track.album = None  # type: ignore[assignment]  # the backref removes it from album.tracks
    session.commit()
    assert _soft_deleted(owner, "tracks", track.id)["album_id"] == album.id


def test_a_child_of_a_collection_without_back_populates_is_soft_deleted(
    session: Session, owner: Engine, deletes: list[str]
) -> None:
    album = _album(session)
    note = album.notes[0]
    album.notes.clear()
    session.commit()
    assert _soft_deleted(owner, "notes", note.id)["album_id"] == album.id
    assert deletes == []
    assert album.notes == []


@pytest.mark.parametrize("replacement", [None, "red.png"])
def test_a_one_to_one_child_cleared_or_replaced_is_soft_deleted(
    session: Session, owner: Engine, replacement: str | None
) -> None:
    album = _album(session)
    cover = album.cover
    assert cover is not None
    album.cover = None if replacement is None else Cover(image=replacement)
    session.commit()
    assert _soft_deleted(owner, "covers", cover.id)["album_id"] == album.id
    assert (album.cover and album.cover.image) == replacement


def test_an_orphan_that_is_not_a_soft_delete_model_is_deleted(
    session: Session, owner: Engine, deletes: list[str]
) -> None:
    album = _album(session)
    sticker = album.stickers[0]
    album.stickers.remove(sticker)
    session.commit()
    assert _stored(owner, "stickers", sticker.id) is None
    assert len(deletes) == 1


def test_hard_delete_removes_an_orphan(session: Session, owner: Engine) -> None:
    album = _album(session)
    track = album.tracks[1]
    album.tracks.remove(track)
    hard_delete(session, track)
    session.commit()
    assert _stored(owner, "tracks", track.id) is None


def test_a_child_moved_to_another_parent_is_not_deleted(session: Session, owner: Engine) -> None:
    album, other = _album(session), _album(session)
    track = album.tracks[0]
    assert len(other.tracks) == 2  # loaded first: an autoflush between would delete the orphan
    album.tracks.remove(track)
    other.tracks.append(track)
    session.commit()
    assert _live(owner, "tracks", track.id)["album_id"] == other.id


def test_deleting_the_parent_soft_deletes_its_soft_delete_children(
    session: Session, owner: Engine, deletes: list[str]
) -> None:
    album = _album(session)
    tracks = [track.id for track in album.tracks]
    credit = album.tracks[0].credits[0].id
    note = album.notes[0].id
    cover = album.cover.id if album.cover else None
    sticker = album.stickers[0].id
    session.delete(album)
    session.commit()
    _soft_deleted(owner, "albums", album.id)
    for ident in tracks:
        assert _soft_deleted(owner, "tracks", ident)["album_id"] == album.id
    _soft_deleted(owner, "credits", credit)
    _soft_deleted(owner, "notes", note)
    assert cover is not None
    _soft_deleted(owner, "covers", cover)
    assert _stored(owner, "stickers", sticker) is None  # not a soft-delete model
    assert len(deletes) == 1
    assert session.scalars(select(Track).where(Track.album_id == album.id)).all() == []


def test_an_orphan_and_its_parent_deleted_together_are_soft_deleted(
    session: Session, owner: Engine
) -> None:
    album = _album(session)
    track = album.tracks[0]
    album.tracks.remove(track)
    session.delete(album)
    session.commit()
    _soft_deleted(owner, "albums", album.id)
    _soft_deleted(owner, "tracks", track.id)


def test_a_child_removed_by_a_backref_from_a_collection_not_loaded_is_soft_deleted(
    session: Session, owner: Engine
) -> None:
    album = _album(session)
    session.expire_all()
    track = session.scalars(select(Track).where(Track.album_id == album.id)).first()
    assert track is not None
    assert "tracks" not in album.__dict__
    track.album = None  # type: ignore[assignment]  # a removal queued on the unloaded collection
    session.commit()
    assert _soft_deleted(owner, "tracks", track.id)["album_id"] == album.id


def test_an_orphan_also_passed_to_session_delete_is_soft_deleted(
    session: Session, owner: Engine
) -> None:
    album = _album(session)
    track = album.tracks[0]
    album.tracks.remove(track)
    session.delete(track)
    session.commit()
    _soft_deleted(owner, "tracks", track.id)


def test_hard_delete_of_the_parent_removes_what_its_delete_cascade_reaches(
    session: Session, owner: Engine
) -> None:
    album = _album(session)
    tracks = [track.id for track in album.tracks]
    session.expire_all()
    session.add(Album(title="pending"))  # the cascade's load would autoflush it
    hard_delete(session, album)
    session.commit()
    assert _stored(owner, "albums", album.id) is None
    assert [_stored(owner, "tracks", ident) for ident in tracks] == [None, None]
