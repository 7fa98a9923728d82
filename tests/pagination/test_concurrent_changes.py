"""Rows inserted and deleted between pages: no row that existed throughout is lost or repeated."""

from __future__ import annotations

import random
import threading
import uuid

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from pgkeel import hard_delete, tenant_context
from pgkeel.pagination import paginate
from tests.pagination.conftest import Note, Tenant

SEED_ROWS = 60


def seeded_tenant(factory: sessionmaker[Session]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A tenant with ``SEED_ROWS`` notes, one transaction each; their ids in insertion order."""
    with factory.begin() as session:
        tenant = Tenant(name="pager")
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
    ids = []
    for n in range(SEED_ROWS):
        with tenant_context(tenant_id), factory.begin() as session:
            note = Note(title=f"seed {n}", rank=n)
            session.add(note)
            session.flush()
            ids.append(note.id)
    return tenant_id, ids


def page_ids(
    factory: sessionmaker[Session], tenant: uuid.UUID, cursor: str | None
) -> tuple[list[uuid.UUID], str | None]:
    """One page of ids, read in its own session as one request of a client would."""
    with tenant_context(tenant), factory() as session:
        page = paginate(session, select(Note), limit=7, after=cursor)
        return [note.id for note in page.items], page.next_cursor


def check(seen: list[uuid.UUID], survivors: set[uuid.UUID], order: list[uuid.UUID]) -> None:
    """No repeat; every survivor seen; the seen survivors in the seeded order."""
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert survivors <= set(seen), f"{len(survivors - set(seen))} rows skipped"
    kept = [ident for ident in seen if ident in survivors]
    assert kept == [ident for ident in order if ident in survivors]


@pytest.mark.parametrize("seed", range(5))
def test_changes_between_pages(factory: sessionmaker[Session], seed: int) -> None:
    """Between pages: new rows, soft and hard deletes, the cursor's own row deleted too."""
    rng = random.Random(seed)  # noqa: S311  # a reproducible plan, not a secret
    tenant, ids = seeded_tenant(factory)
    removed: set[uuid.UUID] = set()
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    added = 0
    while True:
        batch, cursor = page_ids(factory, tenant, cursor)
        seen.extend(batch)
        if cursor is None:
            break
        with tenant_context(tenant), factory.begin() as session:
            for _ in range(3):
                session.add(Note(title=f"new {added}", rank=-1))
                added += 1
            candidates = [ident for ident in ids if ident not in removed]
            victims = {batch[-1], *rng.sample(candidates, 2)}  # the cursor's row among them
            for victim in victims:
                note = session.get(Note, victim)
                if note is None:
                    continue
                hard_delete(session, note) if rng.random() < 0.5 else note.soft_delete()
            removed |= victims
    check(seen, set(ids) - removed, ids)


def test_pages_while_another_connection_writes(factory: sessionmaker[Session]) -> None:
    """A writer inserts and deletes in its own transactions while a client pages through."""
    tenant, ids = seeded_tenant(factory)
    doomed = ids[1::4]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n, victim in enumerate(doomed):
                with tenant_context(tenant), factory.begin() as session:
                    session.add(Note(title=f"concurrent {n}", rank=-1))
                    session.execute(delete(Note).where(Note.id == victim))
                if stop.is_set():
                    return
        except Exception as error:  # noqa: BLE001  # reported by the test's thread
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    try:
        while True:
            batch, cursor = page_ids(factory, tenant, cursor)
            seen.extend(batch)
            if cursor is None:
                break
    finally:
        stop.set()
        thread.join()
    assert errors == []
    check(seen, set(ids) - set(doomed), ids)
