"""Load driver of the http_api benchmark; runs in the rendered service's virtualenv.

Three ASGI applications on the same database, the same runtime role and the same pool settings:
the service's own ``create_app()`` (pgkeel), and the same list endpoint written by hand with
FastAPI and SQLAlchemy (the tenant header parsed, ``set_config`` per transaction, a keyset
query with a base64 cursor, the tenant checked when a page is empty, the same JSON page and
``Link`` header), twice: on an ``AsyncSession`` with a mapped model, as the service does
(``orm``), and on a connection with textual SQL (``hand``).
Concurrent asyncio clients call ``GET /projects`` in-process through httpx, following ``next``
links, for a fixed time per round; the rounds alternate. Prints one JSON document with every
round's figures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import httpx
from app.api import create_app
from app.core.config import Settings
from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import DateTime, Select, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Two statements, as pgkeel's paginate sends them: the first page, and the pages after a cursor
# (one statement with "cursor IS NULL OR ..." would leave a generic plan unable to seek the index).
_COLUMNS = "SELECT id, name, owner_id, version, created_at, updated_at FROM projects "
FIRST_PAGE = text(f"{_COLUMNS} WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT :limit")
NEXT_PAGE = text(
    f"{_COLUMNS} WHERE deleted_at IS NULL "
    "AND (created_at, id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)) "
    "ORDER BY created_at, id LIMIT :limit"
)
TENANT_EXISTS = text("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = :id)")
SET_TENANT = text("SELECT set_config('app.tenant_id', :id, true)")


class _HandBase(DeclarativeBase):
    pass


class HandProject(_HandBase):
    """The service's projects table, mapped by hand (no pgkeel): the columns the list reads."""

    __tablename__ = "projects"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str]
    owner_id: Mapped[uuid.UUID | None]
    version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


_LISTED = select(
    HandProject.id,
    HandProject.name,
    HandProject.owner_id,
    HandProject.version,
    HandProject.created_at,
    HandProject.updated_at,
)
_KEY = (HandProject.created_at, HandProject.id)


def orm_page(limit: int, after: tuple[str, str] | None) -> Select[Any]:
    """The keyset query as an ORM select, the soft-delete filter written in it."""
    statement = _LISTED.where(HandProject.deleted_at.is_(None))
    if after is not None:
        after_at, after_id = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
        statement = statement.where(tuple_(*_KEY) > tuple_(after_at, after_id))
    return statement.order_by(*_KEY).limit(limit + 1)


class Item(BaseModel):
    id: uuid.UUID
    name: str
    owner_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class Page(BaseModel):
    items: list[Item]
    next: str | None


Cursor = tuple[str, str] | None
Rows = Callable[[AsyncEngine, uuid.UUID, int, Cursor], Awaitable[list[Any]]]


def _cursor(after: str | None) -> Cursor:
    if not after:
        return None
    try:
        after_at, after_id = json.loads(base64.urlsafe_b64decode(after))
    except ValueError:
        raise HTTPException(400, "bad cursor") from None
    return after_at, after_id


def _tenant(header: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(header or "")
    except ValueError:
        raise HTTPException(400, "X-Tenant-ID is not a tenant id") from None


def _page(rows: list[Any], limit: int, request: Request, response: Response) -> Page:
    items = [Item.model_validate(dict(row)) for row in rows[:limit]]
    following = None
    if len(rows) > limit:
        last = items[-1]
        cursor = json.dumps([last.created_at.isoformat(), str(last.id)]).encode()
        following = str(
            request.url.include_query_params(
                limit=limit, after=base64.urlsafe_b64encode(cursor).decode()
            )
        )
        response.headers["Link"] = f'<{following}>; rel="next"'
    return Page(items=items, next=following)


async def _text_rows(
    engine: AsyncEngine, tenant: uuid.UUID, limit: int, after: Cursor
) -> list[Any]:
    """The page on a connection, in textual SQL."""
    async with engine.begin() as connection:
        await connection.execute(SET_TENANT, {"id": str(tenant)})
        after_at, after_id = after or (None, None)
        parameters = {"after_at": after_at, "after_id": after_id, "limit": limit + 1}
        page = NEXT_PAGE if after else FIRST_PAGE
        rows = (await connection.execute(page, parameters)).mappings().all()
        # A row proves the tenant exists (row-level security, and its foreign key).
        if not rows and not await connection.scalar(TENANT_EXISTS, {"id": tenant}):
            raise HTTPException(404, "no such tenant")
        return list(rows)


def _orm_rows(engine: AsyncEngine) -> Rows:
    """The page on an ``AsyncSession``, as an ORM select of the mapped columns."""
    sessions = async_sessionmaker(engine)

    async def rows(_engine: AsyncEngine, tenant: uuid.UUID, limit: int, after: Cursor) -> list[Any]:
        async with sessions.begin() as session:
            await session.execute(SET_TENANT, {"id": str(tenant)})
            found = (await session.execute(orm_page(limit, after))).mappings().all()
            if not found and not await session.scalar(TENANT_EXISTS, {"id": tenant}):
                raise HTTPException(404, "no such tenant")
            return list(found)

    return rows


def hand_written_app(url: str, *, orm: bool) -> FastAPI:
    """The list endpoint without pgkeel: on the ORM (``orm``) or in textual SQL."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_async_engine(url, pool_pre_ping=True)
        app.state.rows = _orm_rows(app.state.engine) if orm else _text_rows
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/projects")
    async def list_projects(
        request: Request,
        response: Response,
        x_tenant_id: Annotated[str | None, Header()] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        after: str | None = None,
    ) -> Page:
        tenant, cursor = _tenant(x_tenant_id), _cursor(after)
        rows = await request.app.state.rows(request.app.state.engine, tenant, limit, cursor)
        return _page(rows, limit, request, response)

    return app


async def client(app: FastAPI, tenant: str, stop: float, latencies: list[float]) -> None:
    """One client: list pages of its tenant, following next links, until ``stop``."""
    transport = httpx.ASGITransport(app=app)
    headers = {"X-Tenant-ID": tenant}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers
    ) as http:
        url = "/projects?limit=20"
        while time.perf_counter() < stop:
            began = time.perf_counter()
            response = await http.get(url)
            latencies.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
            url = response.json()["next"] or "/projects?limit=20"


async def one_round(
    app: FastAPI, tenants: list[str], clients: int, seconds: float
) -> dict[str, float]:
    """Requests per second and latency percentiles of one round."""
    latencies: list[float] = []
    async with app.router.lifespan_context(app):
        warm = time.perf_counter() + 0.5
        await asyncio.gather(
            *(client(app, tenants[n % len(tenants)], warm, []) for n in range(clients))
        )
        stop = time.perf_counter() + seconds
        await asyncio.gather(
            *(client(app, tenants[n % len(tenants)], stop, latencies) for n in range(clients))
        )
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "requests": len(latencies),
    }


async def main() -> None:
    """``python _http_load.py URL CLIENTS SECONDS ROUNDS TENANT...``."""
    url, clients, seconds, rounds, *tenants = sys.argv[1:]
    apps = {
        "pgkeel": create_app(Settings(database_url=url, migration_database_url=None)),
        "orm": hand_written_app(url, orm=True),
        "hand": hand_written_app(url, orm=False),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
    for number in range(int(rounds)):
        order = list(apps)[number % len(apps) :] + list(apps)[: number % len(apps)]
        for name in order:
            results[name].append(await one_round(apps[name], tenants, int(clients), float(seconds)))
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
