"""Every request runs in its tenant: through every endpoint, on every exit path, under load."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI
from fastapi.responses import StreamingResponse
from pgkeel import TenantNotSetError, tenant_context
from pgkeel.tenancy import current_tenant

from app.api.tenancy import add_tenant_task, require_tenant
from app.models import User
from tests.api.conftest import client_for, new_tenant

pytestmark = pytest.mark.anyio


def strip(body: dict[str, object]) -> dict[str, object]:
    """A problem without what differs per request."""
    return {key: value for key, value in body.items() if key not in {"instance", "request_id"}}


@pytest.fixture
async def other(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second tenant."""
    async with client_for(app, **{"X-Tenant-ID": await new_tenant(client)}) as second:
        yield second


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({}, 400, "X-Tenant-ID"),
        ({"X-Tenant-ID": ""}, 400, "X-Tenant-ID"),
        ({"X-Tenant-ID": "acme"}, 400, "is not a tenant id"),
        ({"X-Tenant-ID": "' or 1=1 --"}, 400, "is not a tenant id"),
        ({"X-Tenant-ID": str(uuid.uuid4())}, 404, "No tenant"),
    ],
    ids=["missing", "empty", "malformed", "injection", "unknown"],
)
async def test_a_request_without_a_valid_tenant_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str], status: int, says: str
) -> None:
    for method, path in (("GET", "/projects"), ("POST", "/projects")):
        response = await client.request(method, path, headers=headers, json={"name": "x"})
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert says in response.json()["detail"]


async def test_a_tenant_header_sent_twice_is_refused_not_picked(
    client: httpx.AsyncClient,
) -> None:
    mine = await new_tenant(client)
    for second in (mine, str(uuid.uuid4())):
        headers = [("X-Tenant-ID", mine), ("X-Tenant-ID", second)]
        response = await client.get("/projects", headers=headers)
        assert response.status_code == 400, response.text
        assert "sent 2 times" in response.json()["detail"]


async def test_a_nul_character_in_a_tenant_name_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/tenants", json={"name": "nul\u0000byte"})
    assert response.status_code == 422, response.text
    assert "body.name: Value error, contains a NUL character" in response.json()["detail"]


async def test_another_tenants_project_is_not_found_through_every_endpoint(
    api: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    mine = (await api.post("/projects", json={"name": "Secret"})).json()
    url = f"/projects/{mine['id']}"
    missing = f"/projects/{uuid.uuid4()}"
    attempts = [
        ("GET", "", None, {}),
        ("PATCH", "", {"name": "Stolen"}, {"If-Match": '"1"'}),
        ("DELETE", "", None, {}),
        ("POST", "/restore", None, {}),
    ]
    for method, suffix, body, headers in attempts:
        theirs = await other.request(method, url + suffix, json=body, headers=headers)
        unknown = await other.request(method, missing + suffix, json=body, headers=headers)
        assert theirs.status_code == unknown.status_code == 404
        assert strip(theirs.json()) | {"detail": ""} == strip(unknown.json()) | {"detail": ""}
    assert [item["name"] for item in (await other.get("/projects")).json()["items"]] == []
    name_taken_elsewhere = await other.post("/projects", json={"name": "Secret"})
    assert name_taken_elsewhere.status_code == 201  # names are unique per tenant
    assert (await api.get(url)).json()["name"] == "Secret"


async def test_another_tenants_user_is_an_unknown_owner(
    app: FastAPI, api: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    async with app.router.lifespan_context(app):
        with tenant_context(api.headers["X-Tenant-ID"]):
            async with app.state.sessions.begin() as session:
                user = User(email="ann@acme.test", display_name="Ann")
                session.add(user)
        mine = await api.post("/projects", json={"name": "Owned", "owner_id": str(user.id)})
        theirs = await other.post("/projects", json={"name": "Owned", "owner_id": str(user.id)})
        nobody = str(uuid.uuid4())
        unknown = await other.post("/projects", json={"name": "Owned", "owner_id": nobody})
    assert mine.status_code == 201
    assert theirs.status_code == unknown.status_code == 422


async def test_the_context_is_left_on_every_exit_path(app: FastAPI) -> None:
    seen: list[object] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            for _ in range(3):
                await asyncio.sleep(0)
                yield f"{current_tenant()}\n"

        return StreamingResponse(chunks())

    async def later(tasks: BackgroundTasks) -> dict[str, str]:
        async def record() -> None:
            await asyncio.sleep(0)
            seen.append(current_tenant())

        add_tenant_task(tasks, record)
        add_tenant_task(tasks, lambda: seen.append(current_tenant()))  # in the thread pool
        return {"status": "scheduled"}

    for path, endpoint in (
        ("/test/broken", broken),
        ("/test/stream", stream),
        ("/test/later", later),
    ):
        app.add_api_route(path, endpoint, dependencies=[Depends(require_tenant)])
    async with app.router.lifespan_context(app), client_for(app) as client:
        tenant = await new_tenant(client)
        headers = {"X-Tenant-ID": tenant}
        assert (await client.get("/test/broken", headers=headers)).status_code == 500
        assert current_tenant() is None
        streamed = await client.get("/test/stream", headers=headers)
        assert streamed.text.splitlines() == [tenant] * 3
        assert current_tenant() is None
        assert (await client.get("/test/later", headers=headers)).status_code == 200
        assert current_tenant() is None
        assert (await client.get("/test/later")).status_code == 400
    assert [str(scope) for scope in seen] == [tenant, tenant]


def test_a_background_task_outside_a_tenant_is_refused() -> None:
    with pytest.raises(TenantNotSetError, match="outside a tenant's request"):
        add_tenant_task(BackgroundTasks(), print)


async def test_interleaved_requests_of_three_tenants_never_leak(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """1,000+ requests of three tenants from concurrent clients: each sees only its own."""
    tenants = [await new_tenant(client) for _ in range(3)]
    owned: dict[str, set[str]] = {tenant: set() for tenant in tenants}
    every: set[str] = set()
    listed: dict[str, set[str]] = {tenant: set() for tenant in tenants}
    leaks: list[str] = []
    counter = itertools.count()

    async def worker(tenant: str, seed: int) -> int:
        rng = random.Random(seed)  # noqa: S311  # a reproducible mix, not a secret
        sent = 0
        async with client_for(app, **{"X-Tenant-ID": tenant}) as mine:
            for _ in range(40):
                action = rng.choice(["create", "list", "get", "probe"])
                if action == "create" or not owned[tenant]:
                    response = await mine.post("/projects", json={"name": f"p{next(counter)}"})
                    assert response.status_code == 201, response.text
                    ident = response.json()["id"]
                    owned[tenant].add(ident)
                    every.add(ident)
                elif action == "list":
                    page = (await mine.get("/projects", params={"limit": 100})).json()
                    listed[tenant] |= {item["id"] for item in page["items"]}
                elif action == "get":
                    ident = rng.choice(sorted(owned[tenant]))
                    response = await mine.get(f"/projects/{ident}")
                    if response.status_code != 200:
                        leaks.append(f"own {ident}: {response.status_code}")
                else:
                    foreign = sorted(every - owned[tenant])
                    if foreign:
                        response = await mine.get(f"/projects/{rng.choice(foreign)}")
                        if response.status_code != 404:
                            leaks.append(f"foreign {response.status_code}")
                sent += 1
        return sent

    counts = await asyncio.gather(*(worker(tenant, n) for n, tenant in enumerate(tenants * 9)))
    assert sum(counts) >= 1000
    assert leaks == []
    for tenant in tenants:
        assert listed[tenant] <= owned[tenant]  # every create has been recorded by now
        async with client_for(app, **{"X-Tenant-ID": tenant}) as mine:
            page = (await mine.get("/projects", params={"limit": 100})).json()
        seen = {item["id"] for item in page["items"]}
        while page["next"]:
            async with client_for(app, **{"X-Tenant-ID": tenant}) as mine:
                page = (await mine.get(page["next"])).json()
            seen |= {item["id"] for item in page["items"]}
        assert seen == owned[tenant]
