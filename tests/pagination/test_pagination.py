"""Keyset pagination on real PostgreSQL, as a role that row-level security binds."""

from __future__ import annotations

import base64
import gc
import json
import string
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from pgkeel import pagination, tenant_context
from pgkeel.pagination import InvalidCursorError, Page, PaginationError, paginate
from tests.pagination.conftest import Note, Remark, Tenant


def add_tenants(factory: sessionmaker[Session], count: int) -> list[uuid.UUID]:
    """``count`` new tenants (the tenants table has no row-level security)."""
    with factory.begin() as session:
        tenants = [Tenant(name=f"tenant {n}") for n in range(count)]
        session.add_all(tenants)
        session.flush()
        return [tenant.id for tenant in tenants]


def add_notes(factory: sessionmaker[Session], tenant: uuid.UUID, titles: list[str]) -> None:
    """One committed transaction per note: distinct created_at values, as in a live service."""
    for rank, title in enumerate(titles):
        with tenant_context(tenant), factory.begin() as session:
            session.add(Note(title=title, rank=rank))


def all_pages(session: Session, limit: int, **options: object) -> Iterator[Page[Note]]:
    """Every page of the tenant's notes, following the cursors."""
    cursor = None
    while True:
        page = paginate(session, select(Note), limit=limit, after=cursor, **options)  # type: ignore[arg-type]
        yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


@pytest.fixture
def tenant(factory: sessionmaker[Session]) -> uuid.UUID:
    """A tenant with seven notes, n0 ... n6, added in that order."""
    (tenant_id,) = add_tenants(factory, 1)
    add_notes(factory, tenant_id, [f"n{n}" for n in range(7)])
    return tenant_id


def test_pages_follow_created_at_then_id(factory: sessionmaker[Session], tenant: uuid.UUID) -> None:
    with tenant_context(tenant), factory() as session:
        pages = list(all_pages(session, 3))
    assert [[note.title for note in page.items] for page in pages] == [
        ["n0", "n1", "n2"],
        ["n3", "n4", "n5"],
        ["n6"],
    ]
    assert [page.has_next for page in pages] == [True, True, False]


def test_an_exact_page_end_has_no_next_cursor(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        page = paginate(session, select(Note), limit=7)
    assert len(page.items) == 7
    assert page.next_cursor is None


def test_a_custom_unique_key_descending(factory: sessionmaker[Session], tenant: uuid.UUID) -> None:
    with tenant_context(tenant), factory() as session:
        pages = list(all_pages(session, 4, key=(Note.title,), descending=True))
    assert [note.title for page in pages for note in page.items] == [
        f"n{n}" for n in range(6, -1, -1)
    ]


def test_column_statements_give_values_and_tuples(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        titles = paginate(session, select(Note.title), limit=2, key=(Note.created_at, Note.id))
        pairs = paginate(session, select(Note.title, Note.rank), limit=2, key=(Note.title,))
    assert titles.items == ["n0", "n1"]
    assert pairs.items == [("n0", 0), ("n1", 1)]


def test_filters_of_the_statement_hold_on_every_page(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        statement = select(Note).where(Note.rank % 2 == 0)
        first = paginate(session, statement, limit=2)
        second = paginate(session, statement, limit=2, after=first.next_cursor)
    assert [note.rank for note in first.items + second.items] == [0, 2, 4, 6]


def test_totals_exact_and_estimated_leave_deleted_rows_out(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory.begin() as session:
        session.scalars(select(Note).where(Note.title == "n0")).one().soft_delete()
    with tenant_context(tenant), factory() as session:
        exact = paginate(session, select(Note), limit=2, total="exact")
        estimate = paginate(session, select(Note), limit=2, total="estimate")
    assert exact.total == 6
    assert [note.title for note in exact.items] == ["n1", "n2"]
    assert estimate.total is not None
    assert estimate.total >= 1


def test_a_tenant_pages_only_through_its_own_rows(factory: sessionmaker[Session]) -> None:
    first, second = add_tenants(factory, 2)
    add_notes(factory, first, ["a0", "a1", "a2"])
    add_notes(factory, second, ["b0", "b1", "b2"])
    for tenant, prefix in ((first, "a"), (second, "b")):
        with tenant_context(tenant), factory() as session:
            seen = [note.title for page in all_pages(session, 2) for note in page.items]
            raw = session.execute(text("select count(*) from notes")).scalar_one()
        assert seen == [f"{prefix}{n}" for n in range(3)]
        assert raw == 3


def test_another_tenants_cursor_is_refused(factory: sessionmaker[Session]) -> None:
    first, second = add_tenants(factory, 2)
    add_notes(factory, first, ["a0", "a1", "a2"])
    with tenant_context(first), factory() as session:
        cursor = paginate(session, select(Note), limit=1).next_cursor
    with tenant_context(second), factory() as session, pytest.raises(InvalidCursorError):
        paginate(session, select(Note), limit=1, after=cursor)


def titles(page: Page[Note]) -> list[str]:
    """The titles of a page's notes."""
    return [note.title for note in page.items]


def test_one_statement_object_pages_like_a_new_statement_each_time(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    """A statement built once (as a service keeps it) serves every limit, cursor and key."""
    statement = select(Note)
    with tenant_context(tenant), factory() as session:
        first = paginate(session, statement, limit=2)
        wider = paginate(session, statement, limit=4, after=first.next_cursor)
        by_title = paginate(session, statement, limit=3, key=(Note.title,), descending=True)
        with pytest.raises(InvalidCursorError):
            paginate(session, statement, limit=2, after=by_title.next_cursor)
        rest = paginate(session, statement, limit=10, after=wider.next_cursor)
        first_again = paginate(session, statement, limit=1)
    assert [titles(first), titles(wider), titles(by_title), titles(rest)] == [
        ["n0", "n1"],
        ["n2", "n3", "n4", "n5"],
        ["n6", "n5", "n4"],
        ["n6"],
    ]
    assert titles(first_again) == ["n0"]


def test_one_statement_object_keeps_each_tenant_to_its_rows_and_cursors(
    factory: sessionmaker[Session],
) -> None:
    statement = select(Note)
    first, second = add_tenants(factory, 2)
    add_notes(factory, first, ["a0", "a1", "a2"])
    add_notes(factory, second, ["b0", "b1", "b2"])
    with tenant_context(first), factory() as session:
        theirs = paginate(session, statement, limit=1)
    with tenant_context(second), factory() as session:
        mine = paginate(session, statement, limit=1)
        following = paginate(session, statement, limit=5, after=mine.next_cursor)
        with pytest.raises(InvalidCursorError):
            paginate(session, statement, limit=1, after=theirs.next_cursor)
    assert [titles(theirs), titles(mine), titles(following)] == [["a0"], ["b0"], ["b1", "b2"]]


def test_a_key_unique_per_tenant_is_refused_outside_a_tenant_even_once_used_in_one(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    """Titles are unique per tenant: a key of one tenant's pages, not of every tenant's."""
    statement = select(Note)
    with tenant_context(tenant), factory() as session:
        assert titles(paginate(session, statement, limit=1, key=(Note.title,))) == ["n0"]
    with factory() as session, pytest.raises(PaginationError, match="does not identify one row"):
        paginate(session, statement, limit=1, key=(Note.title,))


def test_a_statement_s_page_plans_go_with_it(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    """Plans are remembered per statement object, and forgotten when the statement goes."""
    statement = select(Note).where(Note.rank >= 0)
    with tenant_context(tenant), factory() as session:
        paginate(session, statement, limit=2)
        for _ in range(20):  # a new key expression per call: planned each time, kept for few
            paginate(session, statement, limit=2, key=(Note.created_at + text("'0 s'"), Note.id))
    assert 1 < len(pagination._plans[statement]) <= 8
    remembered = weakref.ref(statement)
    del statement
    gc.collect()
    assert remembered() is None


def _forge(cursor: str, values: list[list[object]]) -> str:
    """The cursor with its payload replaced and its signature kept."""
    payload = base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode()
    return f"{payload}.{cursor.split('.')[1]}"


@pytest.mark.parametrize(
    "forge",
    [
        lambda cursor: _forge(
            cursor, [["t", "1970-01-01T00:00:00+00:00"], ["u", str(uuid.UUID(int=0))]]
        ),
        lambda cursor: _forge(cursor, [["s", "' OR 1=1 --"], ["s", "x"]]),
        lambda cursor: cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),
        lambda _cursor: "not-a-cursor",
        lambda _cursor: "",
        lambda cursor: cursor + ".extra",
        lambda cursor: "%%%." + cursor.split(".")[1],
    ],
    ids=[
        "other-position",
        "sql-in-values",
        "changed-signature",
        "garbage",
        "empty",
        "extra-part",
        "bad-base64",
    ],
)
def test_a_forged_cursor_is_a_clear_error(
    factory: sessionmaker[Session], tenant: uuid.UUID, forge: object
) -> None:
    with tenant_context(tenant), factory() as session:
        cursor = paginate(session, select(Note), limit=2).next_cursor
        assert cursor is not None
        with pytest.raises(InvalidCursorError, match="Fix: start again from the first page"):
            paginate(session, select(Note), limit=2, after=forge(cursor))  # type: ignore[operator]


_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def _decoded(text: str) -> bytes:
    """What a lenient base64 decoder reads: characters outside the alphabet skipped."""
    kept = "".join(character for character in text if character in _ALPHABET)
    return base64.urlsafe_b64decode(kept + "=" * (-len(kept) % 4))


def _respelled(part: str) -> list[str]:
    """Other texts that a base64 decoder reads as the same bytes as ``part``.

    A junk character inside (decoders skip characters outside the alphabet), and, where the
    last character carries unused low bits (a length of 2 or 3 modulo 4), that bit flipped.
    """
    texts = [part[:1] + "!" + part[1:]]
    if len(part) % 4 in {2, 3}:
        texts.append(part[:-1] + _ALPHABET[_ALPHABET.index(part[-1]) ^ 1])
    return texts


def test_a_cursor_spelled_another_way_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    """Only the exact text the service wrote is a cursor, so any change to it is caught."""
    with tenant_context(tenant), factory() as session:
        cursor = paginate(session, select(Note), limit=2).next_cursor
        assert cursor is not None
        payload, mac = cursor.split(".")
        variants = [f"{p}.{mac}" for p in _respelled(payload)]
        variants += [f"{payload}.{m}" for m in _respelled(mac)]
        assert len(variants) >= 3  # the 16-byte signature always has unused bits
        for text in variants:
            first, second = text.split(".")
            assert (_decoded(first), _decoded(second)) == (_decoded(payload), _decoded(mac))
            with pytest.raises(InvalidCursorError, match="is not a cursor this service made"):
                paginate(session, select(Note), limit=2, after=text)


def test_a_cursor_of_another_order_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        cursor = paginate(session, select(Note), limit=2).next_cursor
        with pytest.raises(InvalidCursorError):
            paginate(session, select(Note), limit=2, after=cursor, descending=True)
        with pytest.raises(InvalidCursorError):
            paginate(session, select(Note), limit=2, after=cursor, key=(Note.title,))


def test_a_cursor_signed_with_another_secret_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        cursor = paginate(session, select(Note), limit=2, secret="one").next_cursor  # noqa: S106
        again = paginate(session, select(Note), limit=2, after=cursor, secret="one")  # noqa: S106
        assert [note.title for note in again.items] == ["n2", "n3"]
        with pytest.raises(InvalidCursorError, match="PGKEEL_CURSOR_SECRET"):
            paginate(session, select(Note), limit=2, after=cursor, secret="two")  # noqa: S106


def test_the_secret_comes_from_the_environment(
    factory: sessionmaker[Session], tenant: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGKEEL_CURSOR_SECRET", "shared")
    with tenant_context(tenant), factory() as session:
        cursor = paginate(session, select(Note), limit=2).next_cursor
        again = paginate(session, select(Note), limit=2, after=cursor, secret="shared")  # noqa: S106
    assert [note.title for note in again.items] == ["n2", "n3"]


@pytest.mark.parametrize("limit", [0, -1, True, 2.5, "10"])
def test_a_bad_limit_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID, limit: object
) -> None:
    with (
        tenant_context(tenant),
        factory() as session,
        pytest.raises(PaginationError, match="limit"),
    ):
        paginate(session, select(Note), limit=limit)  # type: ignore[arg-type]


def test_a_key_that_does_not_identify_rows_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        with pytest.raises(PaginationError, match="does not identify one row"):
            paginate(session, select(Note), limit=2, key=(Note.created_at,))
        with pytest.raises(PaginationError, match="does not identify one row"):
            paginate(session, select(Note), limit=2, key=(Note.rank, Note.created_at))


def test_an_order_by_is_refused(factory: sessionmaker[Session], tenant: uuid.UUID) -> None:
    with (
        tenant_context(tenant),
        factory() as session,
        pytest.raises(PaginationError, match="ORDER BY"),
    ):
        paginate(session, select(Note).order_by(Note.title), limit=2)


def test_a_statement_without_default_key_columns_needs_a_key(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session, pytest.raises(PaginationError, match="key="):
        paginate(session, select(Tenant), limit=2)


def add_remarks(factory: sessionmaker[Session], tenant: uuid.UUID, per_note: int) -> int:
    """``per_note`` remarks on each of the tenant's notes; how many in all."""
    with tenant_context(tenant), factory.begin() as session:
        notes = session.scalars(select(Note)).all()
        session.add_all(
            Remark(note_id=note.id, body=f"{note.title} r{n}")
            for note in notes
            for n in range(per_note)
        )
    return len(notes) * per_note


def every_item(session: Session, statement: Any, limit: int, **options: Any) -> list[Any]:
    """The items of every page of ``statement``, following the cursors."""
    items: list[Any] = []
    cursor = None
    while True:
        page = paginate(session, statement, limit=limit, after=cursor, **options)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


@pytest.mark.parametrize(
    ("statement", "key"),
    [
        (lambda: select(Note).join(Note.remarks), None),
        (lambda: select(Note.title).join(Remark, Remark.note_id == Note.id), None),
        (lambda: select(Remark.body).join(Remark.note), (Note.created_at, Note.id)),
        (lambda: select(Note, Remark).where(Remark.note_id == Note.id), None),
        (
            lambda: select(Note).join(Remark, or_(Remark.note_id == Note.id, Remark.id == Note.id)),
            None,
        ),
    ],
    ids=["relationship", "explicit on", "key of the one side", "implicit join", "or"],
)
def test_a_key_whose_rows_a_join_repeats_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID, statement: Any, key: Any
) -> None:
    """One note meets several remarks: keyed by the note alone, rows would be skipped."""
    add_remarks(factory, tenant, per_note=3)
    with tenant_context(tenant), factory() as session:
        with pytest.raises(PaginationError, match="joins remarks") as refused:
            paginate(session, statement(), limit=2, key=key)
        assert "Fix: add the primary key of each such table" in str(refused.value)


def test_a_join_on_the_joined_tables_own_key_pages_every_row_once(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    """Many remarks to one note (joined on the note's id), or a key that names both sides."""
    total = add_remarks(factory, tenant, per_note=3)
    with tenant_context(tenant), factory() as session:
        remarks = every_item(session, select(Remark).join(Remark.note), limit=2)
        pairs = every_item(
            session,
            select(Note.title, Remark.body).join(Note.remarks),
            limit=2,
            key=(Note.created_at, Note.id, Remark.id),
        )
        outer = every_item(session, select(Remark).outerjoin(Note, Note.id == Remark.note_id), 4)
    assert len(remarks) == len({remark.id for remark in remarks}) == total
    assert len(pairs) == len(set(pairs)) == total
    assert len(outer) == total


def test_a_nullable_unique_key_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    """Unique where set: rows whose nick is NULL share it, so it identifies no row."""
    with tenant_context(tenant), factory() as session:
        for key in [(Note.nick,), (Note.nick, Note.id)]:
            with pytest.raises(PaginationError, match=r"notes\.nick may be NULL"):
                paginate(session, select(Note), limit=2, key=key)


def test_an_estimated_total_of_a_statement_with_an_in_list(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        statement = select(Note).where(Note.title.in_(["n1", "n2", "n3"]))
        page = paginate(session, statement, limit=2, total="estimate")
        assert page.total is not None
        assert [note.title for note in page.items] == ["n1", "n2"]


def test_a_limit_beyond_a_postgresql_integer_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with tenant_context(tenant), factory() as session:
        assert len(paginate(session, select(Note), limit=2**31 - 2).items) == 7
        with pytest.raises(PaginationError, match="from 1 to 2147483646"):
            paginate(session, select(Note), limit=2**31 - 1)


@pytest.mark.parametrize("cursor", [123, b"abc.def", ["abc"]], ids=["int", "bytes", "list"])
def test_a_cursor_that_is_not_text_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID, cursor: object
) -> None:
    with (
        tenant_context(tenant),
        factory() as session,
        pytest.raises(InvalidCursorError, match="not a"),
    ):
        paginate(session, select(Note), limit=2, after=cursor)  # type: ignore[arg-type]


def test_a_cursor_of_another_statement_is_refused(
    factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    """Bound to the statement's SQL, not to its parameter values."""
    with tenant_context(tenant), factory() as session:
        filtered = paginate(session, select(Note).where(Note.rank > 0), limit=2).next_cursor
        titles = paginate(session, select(Note.title), limit=2).next_cursor
        for cursor, statement in [
            (filtered, select(Note)),
            (titles, select(Note.id, Note.rank)),
        ]:
            with pytest.raises(InvalidCursorError, match="made for another list"):
                paginate(session, statement, limit=2, after=cursor)
        again = paginate(session, select(Note).where(Note.rank > 1), limit=2, after=filtered)
        assert [note.title for note in again.items] == ["n3", "n4"]
