"""UUIDv7 keys from Python (before flush, time-ordered, batched inserts), a default in SQL;
optimistic locking with VersionedMixin."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Mapped, Session
from sqlalchemy.orm.exc import StaleDataError

from pgkeel import TimestampMixin, UUIDPrimaryKeyMixin, VersionedMixin
from pgkeel.mixins import new_id

from .conftest import Recorder, isolated_base

Base = isolated_base()


class Ticket(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    title: Mapped[str]


class Page(UUIDPrimaryKeyMixin, VersionedMixin, Base):
    body: Mapped[str]


class Greeting(UUIDPrimaryKeyMixin, Base):
    """A model with its own constructor, which knows nothing about ids."""

    text: Mapped[str]

    def __init__(self, text: str) -> None:
        self.text = text


@pytest.fixture(scope="module", autouse=True)
def schema(db_engine: Engine) -> Iterator[None]:
    Base.metadata.create_all(db_engine)
    yield
    Base.metadata.drop_all(db_engine)


def test_an_object_has_its_uuid7_before_flush() -> None:
    ticket = Ticket(title="new")
    assert isinstance(ticket.id, uuid.UUID)
    assert ticket.id.version == 7
    assert ticket.id == ticket.id  # made once, on the first read


def test_the_id_read_before_flush_is_the_one_inserted(db_engine: Engine) -> None:
    ticket = Ticket(title="read early")
    early = ticket.id
    with Session(db_engine) as session:
        session.add(ticket)
        session.commit()
        assert session.scalar(select(Ticket.id).where(Ticket.title == "read early")) == early


def test_a_given_id_is_kept_and_none_gets_one() -> None:
    given = uuid.uuid4()
    assert Ticket(id=given, title="given").id == given
    assert Ticket(id=None, title="none").id.version == 7


def test_a_custom_constructor_still_gets_an_id() -> None:
    greeting = Greeting("hello")
    assert greeting.id.version == 7
    assert greeting.text == "hello"


def test_ten_thousand_ids_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    objects = [Ticket(title=str(n)) for n in range(10_000)]
    assert [o.id for o in objects] == sorted(o.id for o in objects)


def test_ids_made_at_flush_follow_the_insert_order(db_engine: Engine) -> None:
    """Ids nobody read are made by the flush, row after row: the B-tree grows at its right edge."""
    tickets = [Ticket(title=f"ordered {n:05}") for n in range(10_000)]
    random.Random(7).shuffle(tickets)  # noqa: S311  # an arbitrary order, not a secret
    inserted = [t.title for t in tickets]
    with Session(db_engine) as session:
        session.add_all(tickets)
        session.commit()
        titles = session.scalars(
            select(Ticket.title).where(Ticket.title.like("ordered %")).order_by(Ticket.id)
        ).all()
    assert titles == inserted


def test_orm_inserts_stay_batched(db_engine: Engine, record: Recorder) -> None:
    with Session(db_engine) as session:
        session.add_all(Ticket(title=f"batch {n}") for n in range(2_500))
        with record() as sent:
            session.flush()
        session.rollback()
    inserts = [s for s in sent if s.startswith("INSERT")]
    assert len(inserts) == 3  # 1,000 rows per statement (insertmanyvalues), not 2,500
    assert len(sent) == len(inserts)
    assert all("RETURNING" in s for s in inserts)  # created_at/updated_at come back at once


def test_raw_sql_insert_without_id_gets_one(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        new = conn.execute(
            text("INSERT INTO tickets (title) VALUES ('raw') RETURNING id, created_at, updated_at")
        ).one()
    assert isinstance(new.id, uuid.UUID)
    assert new.created_at == new.updated_at


def test_versions_count_orm_updates(db_engine: Engine) -> None:
    with Session(db_engine) as session:
        page = Page(body="v1")
        session.add(page)
        session.commit()
        assert page.version == 1
        page.body = "v2"
        session.commit()
        assert page.version == 2


def test_a_stale_update_raises_stale_data_error(db_engine: Engine) -> None:
    with Session(db_engine) as session:
        page = Page(body="original")
        session.add(page)
        session.commit()
        page_id = page.id
    with Session(db_engine) as first, Session(db_engine) as second:
        mine, theirs = first.get_one(Page, page_id), second.get_one(Page, page_id)
        theirs.body = "theirs"
        second.commit()
        mine.body = "mine"
        with pytest.raises(StaleDataError, match="expected to update 1 row"):
            first.flush()
    with db_engine.connect() as conn:
        row = conn.execute(text("SELECT body, version FROM pages WHERE id = :id"), {"id": page_id})
        assert tuple(row.one()) == ("theirs", 2)


def test_raw_sql_insert_gets_version_one(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        version = conn.execute(
            text("INSERT INTO pages (body) VALUES ('raw') RETURNING version")
        ).scalar_one()
    assert version == 1
