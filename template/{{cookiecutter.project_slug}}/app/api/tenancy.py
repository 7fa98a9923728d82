"""The tenant of a request: read once, at the edge, and held for everything the request runs.

``tenant_from_request`` is the one place that says where the tenant comes from: the
``X-Tenant-ID`` header. Behind an identity provider, change it to read a claim of the verified
token instead (and drop the header), nothing else changes.

``TenantMiddleware`` runs the whole request inside ``pgkeel.tenant_context``: the endpoint, its
dependencies, a streaming body and the background tasks, and leaves it however the request ends.
Routes that need a tenant depend on ``require_tenant``: no tenant or a malformed one is a 400, a
tenant that does not exist a 404 (as is another tenant's resource, so ids cannot be probed).
A route that can tell from its own query that the tenant exists depends on ``tenant_named`` (the
400s only) and calls ``check_tenant_exists`` when its query cannot tell (see the project list).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Request
from pgkeel import TenantNotSetError, tenant_context
from pgkeel.tenancy import current_tenant
from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.database import SessionDep
from app.api.problems import Problem
from app.models import Tenant

TENANT_HEADER = "X-Tenant-ID"
_PROBLEM = "tenant_problem"


def tenant_from_request(headers: Headers) -> str | None:
    """The tenant id a request names, as text: here, its ``X-Tenant-ID`` header, sent once.

    Sent twice (two proxies, a client and a gateway), the request names no one tenant:
    ``ValueError``, which the route answers with a 400 rather than pick one.
    """
    values = headers.getlist(TENANT_HEADER)
    if len(values) > 1:
        raise ValueError(
            f"{TENANT_HEADER} is sent {len(values)} times: the request must name one tenant. "
            "Fix: send the header once (check that no proxy adds it a second time)."
        )
    return values[0] if values else None


def _parse(raw: str | None) -> tuple[uuid.UUID | None, str]:
    """The tenant id, or the reason there is none."""
    if raw is None or not raw.strip():
        return None, (
            f"This route acts for a tenant, and the request names none. Fix: send the header "
            f"{TENANT_HEADER}: <the tenant's id>."
        )
    try:
        return uuid.UUID(raw.strip()), ""
    except ValueError:
        return None, (
            f"{TENANT_HEADER} {raw[:64]!r} is not a tenant id. Fix: send the tenant's UUID, "
            "e.g. 0190f5c2-7d4e-7c3a-9b1e-3f6d2a8c4b10."
        )


class TenantMiddleware:
    """Run each HTTP request inside the ``tenant_context`` of the tenant it names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request inside its tenant's context; without a valid tenant, outside any."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            tenant, problem = _parse(tenant_from_request(Headers(scope=scope)))
        except ValueError as error:
            tenant, problem = None, str(error)
        scope.setdefault("state", {})[_PROBLEM] = problem
        if tenant is None:
            await self.app(scope, receive, send)
            return
        with tenant_context(tenant):
            await self.app(scope, receive, send)


# Built once. The tenants table has no tenant or soft-delete filter for pgkeel's ORM hooks to add,
# so the check runs on the session's connection (in its transaction, with the tenant set).
_TENANT_EXISTS = select(exists().where(Tenant.id == bindparam("tenant_id")))


async def tenant_named(request: Request) -> uuid.UUID:
    """The tenant the request names, not yet known to exist; 400 without a valid one."""
    scope = current_tenant()
    if not isinstance(scope, uuid.UUID):
        raise Problem(400, "Tenant required", getattr(request.state, _PROBLEM, "") or "no tenant")
    return scope


async def check_tenant_exists(session: AsyncSession, tenant: uuid.UUID) -> None:
    """404 if no tenant has the id ``tenant`` (one query, in the session's transaction)."""
    connection = await session.connection()
    if not await connection.scalar(_TENANT_EXISTS, {"tenant_id": tenant}):
        raise Problem(
            404, "Not Found", f"No tenant {tenant}. Fix: send the id of an existing tenant."
        )


async def require_tenant(request: Request, session: SessionDep) -> uuid.UUID:
    """The request's tenant; 400 without a valid one, 404 if no such tenant exists."""
    tenant = await tenant_named(request)
    await check_tenant_exists(session, tenant)
    return tenant


TenantDep = Annotated[uuid.UUID, Depends(require_tenant)]
NamedTenantDep = Annotated[uuid.UUID, Depends(tenant_named)]


async def _in_tenant(
    tenant: uuid.UUID,
    task: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> None:
    """Run ``task`` as ``tenant`` (a blocking function in the thread pool)."""
    with tenant_context(tenant):
        if inspect.iscoroutinefunction(task):
            await task(*args, **kwargs)
        else:
            await run_in_threadpool(task, *args, **kwargs)


def add_tenant_task(
    tasks: BackgroundTasks,
    task: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> None:
    """Run ``task`` after the response, in this request's tenant; refuse outside one."""
    tenant = current_tenant()
    if not isinstance(tenant, uuid.UUID):
        raise TenantNotSetError(
            f"add_tenant_task({getattr(task, '__name__', task)!r}) outside a tenant's request: "
            "the task would run with no tenant and see no rows. Fix: schedule it from a route "
            "that depends on require_tenant, or run system work in its own job."
        )
    tasks.add_task(_in_tenant, tenant, task, *args, **kwargs)
