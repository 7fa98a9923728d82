"""created_at/updated_at are kept right by the database, whatever sends the UPDATE."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, create_engine, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.ddl import UPDATED_AT_FUNCTION, updated_at_trigger_name

from .conftest import Recorder, isolated_base

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
Base = isolated_base()


class Note(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A note whose timestamps the tests watch."""

    body: Mapped[str]


notes = Note.__table__


@pytest.fixture(scope="module", autouse=True)
def schema(db_engine: Engine) -> Iterator[None]:
    Base.metadata.create_all(db_engine)
    yield
    Base.metadata.drop_all(db_engine)


def stamps(engine: Engine, note_id: uuid.UUID) -> tuple[datetime, datetime]:
    """(created_at, updated_at) of a note as the database has them."""
    with engine.connect() as conn:
        row = conn.execute(
            select(notes.c.created_at, notes.c.updated_at).where(notes.c.id == note_id)
        ).one()
    return row.created_at, row.updated_at


def inserted(engine: Engine) -> uuid.UUID:
    """A committed note, in a transaction of its own."""
    with Session(engine) as session:
        note = Note(body="first")
        session.add(note)
        session.commit()
        return note.id


def orm_update(engine: Engine, note_id: uuid.UUID, *, created_at: datetime | None) -> None:
    with Session(engine) as session:
        note = session.get_one(Note, note_id)
        note.body = "changed by the ORM"
        if created_at is not None:
            note.created_at = created_at
        session.commit()


def core_update(engine: Engine, note_id: uuid.UUID, *, created_at: datetime | None) -> None:
    values: dict[str, object] = {"body": "changed by Core"}
    if created_at is not None:
        values["created_at"] = created_at
    with engine.begin() as conn:
        conn.execute(update(notes).where(notes.c.id == note_id).values(**values))


def raw_update(engine: Engine, note_id: uuid.UUID, *, created_at: datetime | None) -> None:
    extra = ", created_at = :created_at" if created_at is not None else ""
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE notes SET body = 'changed by raw SQL'{extra} WHERE id = :id"),
            {"id": note_id, "created_at": created_at},
        )


def upsert(engine: Engine, note_id: uuid.UUID, *, created_at: datetime | None) -> None:
    statement = insert(notes).values(id=note_id, body="upserted")
    changes: dict[str, object] = {"body": statement.excluded.body}
    if created_at is not None:
        changes["created_at"] = created_at
    with engine.begin() as conn:
        conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changes))


UPDATES: dict[str, Callable[..., None]] = {
    "orm": orm_update,
    "core": core_update,
    "raw-sql": raw_update,
    "on-conflict-do-update": upsert,
}


@pytest.mark.parametrize("tries_created_at", [False, True], ids=["plain", "sets-created_at"])
@pytest.mark.parametrize("how", UPDATES)
def test_update_moves_updated_at_and_keeps_created_at(
    db_engine: Engine, how: str, tries_created_at: bool
) -> None:
    note_id = inserted(db_engine)
    created, updated = stamps(db_engine, note_id)
    assert created == updated

    UPDATES[how](db_engine, note_id, created_at=EPOCH if tries_created_at else None)

    created_after, updated_after = stamps(db_engine, note_id)
    assert updated_after > updated
    assert created_after == created


def test_two_updates_in_one_transaction_still_move_updated_at(db_engine: Engine) -> None:
    note_id = inserted(db_engine)
    seen = []
    with db_engine.begin() as conn:
        for body in ("one", "two"):
            conn.execute(update(notes).where(notes.c.id == note_id).values(body=body))
            seen.append(conn.scalar(select(notes.c.updated_at).where(notes.c.id == note_id)))
    assert seen[1] > seen[0]


def test_orm_reads_updated_at_from_the_update_itself(db_engine: Engine, record: Recorder) -> None:
    note_id = inserted(db_engine)
    with Session(db_engine, expire_on_commit=False) as session:
        note = session.get_one(Note, note_id)
        before = note.updated_at
        note.body = "watched"
        with record() as sent:
            session.flush()
            seen_by_orm = note.updated_at
        session.commit()
    assert len(sent) == 1
    assert sent[0].startswith("UPDATE notes SET body=")
    assert sent[0].rstrip().endswith("RETURNING notes.updated_at")
    assert seen_by_orm > before
    assert seen_by_orm == stamps(db_engine, note_id)[1]


def test_orm_insert_reads_both_timestamps_without_a_select(
    db_engine: Engine, record: Recorder
) -> None:
    with Session(db_engine, expire_on_commit=False) as session:
        note = Note(body="new")
        session.add(note)
        with record() as sent:
            session.flush()
            created, updated = note.created_at, note.updated_at
        session.commit()
    assert [statement.split()[0] for statement in sent] == ["INSERT"]
    assert (created, updated) == stamps(db_engine, note.id)


def test_orm_does_not_keep_a_created_at_the_database_refused(db_engine: Engine) -> None:
    note_id = inserted(db_engine)
    created, _ = stamps(db_engine, note_id)
    with Session(db_engine, expire_on_commit=False) as session:
        note = session.get_one(Note, note_id)
        note.created_at = EPOCH
        session.flush()
        assert note.created_at == created  # reloaded, not the value that was written


def test_an_insert_may_set_created_at(db_engine: Engine) -> None:
    """Only UPDATE is guarded: an import can keep the original creation time."""
    with Session(db_engine) as session:
        note = Note(body="imported", created_at=EPOCH)
        session.add(note)
        session.commit()
        assert stamps(db_engine, note.id)[0] == EPOCH


def test_create_all_installs_one_function_and_one_trigger(connection: Connection) -> None:
    functions = function_count(connection)
    triggers = connection.execute(
        text(
            "select tgname, tgtype from pg_trigger "
            "where tgrelid = 'notes'::regclass and not tgisinternal"
        )
    ).all()
    assert functions == 1
    # tgtype 19 = ROW (1) | BEFORE (2) | UPDATE (16)
    assert [tuple(row) for row in triggers] == [(updated_at_trigger_name("notes"), 19)]
    assert updated_at_trigger_name("notes") == "trg_notes_updated_at"


def function_count(conn: Connection) -> int:
    query = text("select count(*) from pg_proc where proname = :name")
    return int(conn.execute(query, {"name": UPDATED_AT_FUNCTION.name}).scalar_one())


def test_drop_all_removes_the_function_with_the_last_table(postgres_url: str) -> None:
    other = isolated_base()

    class Memo(UUIDPrimaryKeyMixin, TimestampMixin, other):
        pass

    class Reminder(UUIDPrimaryKeyMixin, TimestampMixin, other):
        pass

    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            other.metadata.create_all(conn)
            other.metadata.drop_all(conn, tables=[Memo.__table__])
            assert function_count(conn) == 1  # reminders still needs it
            other.metadata.drop_all(conn)
            assert function_count(conn) == 0
    finally:
        engine.dispose()


def test_drop_all_keeps_a_function_another_base_still_uses(db_engine: Engine) -> None:
    other = isolated_base()

    class Memo(UUIDPrimaryKeyMixin, TimestampMixin, other):
        pass

    with db_engine.connect() as conn, conn.begin() as transaction:
        other.metadata.create_all(conn)
        other.metadata.drop_all(conn)
        assert function_count(conn) == 1  # the trigger on notes (this module's base) uses it
        transaction.rollback()
