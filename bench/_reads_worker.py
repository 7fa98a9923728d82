"""A process that measures soft-delete reads for one library, driven by ``bench.reads``.

``python -m bench._reads_worker LIBRARY URL`` defines that library's models, loads them the
first time, prints ``ready`` and then answers each line ``VARIANT COUNT`` with the wall and CPU
seconds per statement of COUNT statements (one session each; ``books in one session``: all
COUNT in one session, so that the transaction's costs are spread) as JSON. Libraries live in
separate processes: sqlalchemy-easy-softdelete hooks every ``Session`` of its process.

Data: 100 shelves, 20 books each, every other book soft-deleted; a read fetches one shelf's 10
live books (``books``) or the shelf with them through ``joinedload`` (``joined``). The tenant
variants put the shelves of 10 tenants in tables with row-level security.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    ForeignKey,
    create_engine,
    event,
    false,
    func,
    select,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    joinedload,
    mapped_column,
    relationship,
    with_loader_criteria,
)
from sqlalchemy.orm import sessionmaker as plain_sessionmaker

SHELVES = 100
SHARED_SESSION = frozenset({"books in one session"})
"""Reads whose COUNT statements run in one session (the others: a session each)."""
BOOKS = 20
TENANTS = 10

Read = Callable[[int], object]
InSession = Callable[[int, Session], object]
"""A read made in a session the caller opened (several statements in one transaction)."""


def _load(engine: Engine, shelves: str, books: str, *, tenants: bool = False) -> None:
    """Shelves and their books, every other book deleted (ids made by the server)."""
    tenant_column = ", tenant_id" if tenants else ""
    tenant_value = ", (SELECT id FROM tenants ORDER BY id OFFSET n % 10 LIMIT 1)" if tenants else ""
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {shelves} (id, name{tenant_column}) "
                f"SELECT gen_random_uuid(), 'shelf ' || n{tenant_value} "
                "FROM generate_series(1, :n) n"
            ),
            {"n": SHELVES},
        )
        connection.execute(
            text(
                f"INSERT INTO {books} (id, shelf_id, title, deleted_at, is_deleted{tenant_column}) "
                f"SELECT gen_random_uuid(), s.id, 'book ' || b, "
                "CASE WHEN b % 2 = 0 THEN now() END, b % 2 = 0"
                f"{', s.tenant_id' if tenants else ''} "
                f"FROM {shelves} s, generate_series(1, :n) b"
            ),
            {"n": BOOKS},
        )
        connection.execute(text(f"ANALYZE {shelves}; ANALYZE {books}"))


def _shelf_ids(engine: Engine, shelves: str) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    tenant = "tenant_id" if shelves.startswith("tenant_") else "NULL::uuid"
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT id, {tenant} FROM {shelves} ORDER BY id"))
        return [(row[0], row[1]) for row in rows]


class _Hand(DeclarativeBase):
    pass


class _SameColumns:
    """The columns pgkeel's soft-delete tables have beyond the read's own.

    Every library's models map every column of the tables they read, so that each loads the
    same values per row: a model that maps fewer columns reads less and looks cheaper.
    """

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    is_deleted: Mapped[bool] = mapped_column(server_default=false())


class HandShelf(_SameColumns, _Hand):
    """pgkeel's soft-delete shelves, mapped by hand: the filter is written in each query."""

    __tablename__ = "shelves"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str]
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    books: Mapped[list[HandBook]] = relationship(
        primaryjoin="and_(HandShelf.id == HandBook.shelf_id, HandBook.deleted_at.is_(None))",
        viewonly=True,
    )


class HandBook(_SameColumns, _Hand):
    __tablename__ = "books"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    shelf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shelves.id"))
    title: Mapped[str]
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HandTenantShelf(_SameColumns, _Hand):
    __tablename__ = "tenant_shelves"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID]
    name: Mapped[str]
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    books: Mapped[list[HandTenantBook]] = relationship(
        primaryjoin="and_(HandTenantShelf.id == HandTenantBook.shelf_id, "
        "HandTenantBook.deleted_at.is_(None))",
        viewonly=True,
    )


class HandTenantBook(_SameColumns, _Hand):
    __tablename__ = "tenant_books"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID]
    shelf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant_shelves.id"))
    title: Mapped[str]
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class _Library:
    """How one library's queries are made: its sessions, and what each query writes itself."""

    sessions: Callable[[], Session]
    written: Callable[[Any, uuid.UUID | None], tuple[Any, ...]] = lambda _model, _tenant: ()
    """The filter written in the query (``deleted_at IS NULL``, the tenant), if any."""
    scoped: Callable[[uuid.UUID | None], AbstractContextManager[object]] = lambda _tenant: (
        nullcontext()
    )
    """The context a query runs in (pgkeel's tenant context), if any."""


def _books_in(library: _Library, book: Any, ids: list[tuple[uuid.UUID, Any]]) -> InSession:  # noqa: ANN401
    """One shelf's live books, in the caller's session."""

    def read(n: int, session: Session) -> object:
        shelf, tenant = ids[n % len(ids)]
        where = (book.shelf_id == shelf, *library.written(book, tenant))
        return session.scalars(select(book).where(*where)).all()

    return read


def _books(library: _Library, book: Any, ids: list[tuple[uuid.UUID, Any]]) -> Read:  # noqa: ANN401
    """One shelf's live books, one session per statement."""
    in_session = _books_in(library, book, ids)

    def read(n: int) -> object:
        with library.scoped(ids[n % len(ids)][1]), library.sessions() as session:
            return in_session(n, session)

    return read


def _one_session(library: _Library, in_session: InSession) -> Read:
    """A read whose ``n`` statements share one session: ``read(n)`` makes all of them."""

    def read(count: int) -> object:
        with library.sessions() as session:
            return [in_session(n, session) for n in range(count)][-1]

    return read


def _joined(library: _Library, shelf_model: Any, ids: list[tuple[uuid.UUID, Any]]) -> Read:  # noqa: ANN401
    """The shelf with its live books through ``joinedload``, one session per statement."""

    def read(n: int) -> object:
        shelf, tenant = ids[n % len(ids)]
        with library.scoped(tenant), library.sessions() as session:
            where = (shelf_model.id == shelf, *library.written(shelf_model, tenant))
            query = select(shelf_model).where(*where).options(joinedload(shelf_model.books))
            return session.scalars(query).unique().all()

    return read


def _reads(
    library: _Library, engine: Engine, models: tuple[Any, ...], prefix: str
) -> dict[str, Read]:
    """The reads of one library: ``models`` are (shelf, book[, tenant shelf, tenant book])."""
    shelves = _shelf_ids(engine, f"{prefix}shelves")
    reads = {
        "books": _books(library, models[1], shelves),
        "joined": _joined(library, models[0], shelves),
        "books in one session": _one_session(library, _books_in(library, models[1], shelves)),
    }
    if len(models) == 4:
        tenant_shelves = _shelf_ids(engine, "tenant_shelves")
        reads["tenant books"] = _books(library, models[3], tenant_shelves)
        reads["tenant joined"] = _joined(library, models[2], tenant_shelves)
    return reads


def _written_by_hand(model: Any, tenant: uuid.UUID | None) -> tuple[Any, ...]:  # noqa: ANN401
    """``deleted_at IS NULL`` and, for a tenant's rows, ``tenant_id = <tenant>``."""
    live = (model.deleted_at.is_(None),)
    return live if tenant is None else (model.tenant_id == tenant, *live)


def _hand(engine: Engine, _load_data: bool) -> dict[str, Read]:  # noqa: FBT001
    """The filters written by hand in each query, on a plain session (superuser: no RLS)."""
    library = _Library(plain_sessionmaker(engine), written=_written_by_hand)
    return _reads(library, engine, (HandShelf, HandBook, HandTenantShelf, HandTenantBook), "")


def _hand_beside_pgkeel(engine: Engine, _load_data: bool) -> dict[str, Read]:  # noqa: FBT001
    """The hand-written reads, in a process that also imported pgkeel and defined its models.

    pgkeel's session factory is made on an engine of its own, so no hook of pgkeel's reaches
    these reads: what this measures against ``hand`` is what a process carrying pgkeel's code
    and models costs the same work (more types and functions in the interpreter's caches).
    """
    unused = False
    _pgkeel(create_engine(engine.url), unused)
    return _hand(engine, unused)


def _recipe(engine: Engine, _load_data: bool) -> dict[str, Read]:  # noqa: FBT001
    """SQLAlchemy's own recipe: a ``do_orm_execute`` listener adding ``with_loader_criteria``.

    The soft-delete filter and nothing else (no tenant, no other path guarded), on the
    hand-written models: what the filter alone costs, beside pgkeel's whole set of hooks.
    """
    live_only = [
        with_loader_criteria(model, lambda cls: cls.deleted_at.is_(None), include_aliases=True)
        for model in (HandShelf, HandBook)
    ]
    sessions = plain_sessionmaker(engine)

    @event.listens_for(sessions, "do_orm_execute")
    def _filter(state: ORMExecuteState) -> None:
        if state.is_select and not state.is_column_load:
            state.statement = state.statement.options(*live_only)

    return _reads(_Library(sessions), engine, (HandShelf, HandBook), "")


def _pgkeel(engine: Engine, load_data: bool) -> dict[str, Read]:  # noqa: FBT001
    """pgkeel's models and ``create_sessionmaker``: the filters come from the session hooks."""
    from pgkeel import (  # noqa: PLC0415  # each library only in its own process
        MultiTenantModel,
        SoftDeleteMixin,
        SoftDeleteModel,
        create_sessionmaker,
        tenant_context,
    )
    from pgkeel.base import Base  # noqa: PLC0415
    from pgkeel.mixins import UUIDPrimaryKeyMixin  # noqa: PLC0415

    class Tenant(UUIDPrimaryKeyMixin, Base):
        name: Mapped[str]

    class Shelf(SoftDeleteModel):
        name: Mapped[str]
        books: Mapped[list[Book]] = relationship()

    class Book(SoftDeleteModel):
        shelf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shelves.id"), index=True)
        title: Mapped[str]

    class TenantShelf(MultiTenantModel, SoftDeleteMixin):
        name: Mapped[str]
        books: Mapped[list[TenantBook]] = relationship()

    class TenantBook(MultiTenantModel, SoftDeleteMixin):
        shelf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant_shelves.id"), index=True)
        title: Mapped[str]

    if load_data:
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO tenants (id, name) SELECT gen_random_uuid(), 't' || n "
                    "FROM generate_series(1, :n) n"
                ),
                {"n": TENANTS},
            )
        _load(engine, "shelves", "books")
        _load(engine, "tenant_shelves", "tenant_books", tenants=True)
    library = _Library(
        create_sessionmaker(engine),
        scoped=lambda tenant: nullcontext() if tenant is None else tenant_context(tenant),
    )
    return _reads(library, engine, (Shelf, Book, TenantShelf, TenantBook), "")


def _easy(engine: Engine, load_data: bool) -> dict[str, Read]:  # noqa: FBT001
    """sqlalchemy-easy-softdelete's generated mixin: its hook rewrites every ORM select."""
    from sqlalchemy_easy_softdelete.mixin import (  # noqa: PLC0415
        generate_soft_delete_mixin_class,
    )

    class Easy(DeclarativeBase):
        pass

    class EasySoftDelete(generate_soft_delete_mixin_class()):  # type: ignore[misc]
        deleted_at: datetime

    class EasyShelf(_SameColumns, Easy, EasySoftDelete):
        __tablename__ = "easy_shelves"
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
        name: Mapped[str]
        books: Mapped[list[EasyBook]] = relationship()

    class EasyBook(_SameColumns, Easy, EasySoftDelete):
        __tablename__ = "easy_books"
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
        shelf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("easy_shelves.id"), index=True)
        title: Mapped[str]

    if load_data:
        Easy.metadata.create_all(engine)
        _load(engine, "easy_shelves", "easy_books")
    return _reads(_Library(plain_sessionmaker(engine)), engine, (EasyShelf, EasyBook), "easy_")


LIBRARIES: dict[str, Callable[[Engine, bool], dict[str, Read]]] = {
    "pgkeel": _pgkeel,
    "hand": _hand,
    "hand beside pgkeel": _hand_beside_pgkeel,
    "recipe": _recipe,
    "easy": _easy,
}


@contextmanager
def loaded_database(name: str) -> Iterator[str]:
    """A throwaway server with the reads' tables created and filled; yields the database's URL.

    For the tools that run these reads in processes of their own (``bench._instructions``,
    ``bench._attribution``): each child reads the tables and loads nothing. pgkeel is imported
    here, not at the top: the worker also runs in the SQLAlchemy 2.0 environment, without it.
    """
    from pgkeel.database import provide_server  # noqa: PLC0415
    from pgkeel.testing.databases import create_database  # noqa: PLC0415

    with provide_server({}) as server:
        url = create_database(server.url, name).render_as_string(hide_password=False)
        loader = create_engine(url)
        loads_tables = True
        LIBRARIES["pgkeel"](loader, loads_tables)
        loader.dispose()
        yield url


def _check(reads: dict[str, Read]) -> dict[str, Any]:
    """Rows each read returns (the same for every library, or the comparison is void)."""
    counts: dict[str, Any] = {}
    for name, read in reads.items():
        result = read(1) if name in SHARED_SESSION else read(0)
        first = result[0] if isinstance(result, list | tuple) else result  # type: ignore[index]
        books = getattr(first, "books", None)
        counts[name] = len(books) if books is not None else len(result)  # type: ignore[arg-type]
    return counts


def main(argv: list[str]) -> None:
    library, url = argv[0], argv[1]
    load_data = "--load" in argv
    engine = create_engine(url)
    reads = LIBRARIES[library](engine, load_data)
    print(json.dumps({"ready": _check(reads)}), flush=True)
    for line in sys.stdin:
        name, count = line.split("\t")
        read = reads[name]
        started, cpu_started = time.perf_counter(), time.process_time()
        if name in SHARED_SESSION:
            read(int(count))
        else:
            for n in range(int(count)):
                read(n)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        print(json.dumps({"wall": wall / int(count), "cpu": cpu / int(count)}), flush=True)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
