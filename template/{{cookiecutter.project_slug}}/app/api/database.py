"""The session of a request: one ``AsyncSession`` with pgkeel's hooks, closed when it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session from the application's factory, committed when the request succeeds.

    A request that fails is rolled back. One that only read is committed too: psycopg forgets
    its prepared statements on every ROLLBACK, so ending reads that way would cost a round trip
    (``DEALLOCATE ALL``) and the planning of every statement again on the next request.
    """
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session
        if session.in_transaction():
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session)]
