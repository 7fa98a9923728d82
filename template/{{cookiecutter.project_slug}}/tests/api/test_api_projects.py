"""Projects over HTTP: create, read, keyset pages, optimistic locking, soft delete, restore."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

pytestmark = pytest.mark.anyio
PROBLEM_JSON = "application/problem+json"


async def create(api: httpx.AsyncClient, name: str) -> dict[str, object]:
    """A new project's JSON."""
    response = await api.post("/projects", json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    """The response is an RFC 9457 problem with ``status``; its JSON."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "request_id"} <= body.keys()
    return body


async def test_create_then_get(api: httpx.AsyncClient) -> None:
    response = await api.post("/projects", json={"name": "Apollo"})
    assert response.status_code == 201
    project = response.json()
    assert response.headers["location"] == f"/projects/{project['id']}"
    assert response.headers["etag"] == '"1"'
    assert project["name"] == "Apollo"
    assert project["version"] == 1
    fetched = await api.get(f"/projects/{project['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == project
    assert fetched.headers["etag"] == '"1"'


async def test_an_unknown_project_is_a_404_problem(api: httpx.AsyncClient) -> None:
    body = assert_problem(await api.get(f"/projects/{uuid.uuid4()}"), 404)
    assert body["title"] == "Not Found"


async def test_bad_bodies_are_422_problems(api: httpx.AsyncClient) -> None:
    for bad in ({}, {"name": ""}, {"name": "x" * 256}, {"name": "ok", "colour": "red"}):
        body = assert_problem(await api.post("/projects", json=bad), 422)
        assert body["errors"]


async def test_a_nul_character_in_a_name_is_a_422_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/projects", json={"name": "nul\u0000byte"})
    body = assert_problem(created, 422)
    assert "body.name: Value error, contains a NUL character" in str(body["detail"])
    project = await create(api, "Clean")
    changed = await api.patch(
        f"/projects/{project['id']}", json={"name": "\u0000"}, headers={"If-Match": '"1"'}
    )
    assert "body.name" in str(assert_problem(changed, 422)["detail"])


async def test_an_unknown_owner_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/projects", json={"name": "Owned", "owner_id": str(uuid.uuid4())})
    assert assert_problem(response, 422)["title"] == "Unknown owner"


async def test_a_taken_name_is_a_409(api: httpx.AsyncClient) -> None:
    await create(api, "Gemini")
    assert_problem(await api.post("/projects", json={"name": "Gemini"}), 409)


async def test_update_needs_the_current_etag(api: httpx.AsyncClient) -> None:
    project = await create(api, "Mercury")
    url = f"/projects/{project['id']}"
    assert_problem(await api.patch(url, json={"name": "Mercury 2"}), 428)
    stale = await api.patch(url, json={"name": "Mercury 2"}, headers={"If-Match": '"7"'})
    assert assert_problem(stale, 412)["detail"]
    assert stale.headers["etag"] == '"1"'
    updated = await api.patch(url, json={"name": "Mercury 2"}, headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Mercury 2"
    assert updated.headers["etag"] == '"2"'
    again = await api.patch(url, json={"name": "Mercury 3"}, headers={"If-Match": '"1"'})
    assert_problem(again, 412)
    weak = await api.patch(url, json={"name": "Mercury 3"}, headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 200
    assert (await api.get(url)).json()["name"] == "Mercury 3"


async def test_an_unquoted_etag_is_a_400_that_says_to_quote_it(api: httpx.AsyncClient) -> None:
    """``If-Match: 1`` is no entity tag; it is not a version that changed meanwhile either."""
    project = await create(api, "Venus")
    url = f"/projects/{project['id']}"
    bare = await api.patch(url, json={"name": "Venus 2"}, headers={"If-Match": "1"})
    assert 'Fix: send If-Match: "1"' in str(assert_problem(bare, 400)["detail"])
    assert (await api.get(url)).json()["name"] == "Venus"


async def test_two_concurrent_updates_of_one_version_one_wins(api: httpx.AsyncClient) -> None:
    project = await create(api, "Vostok")
    url = f"/projects/{project['id']}"
    responses = await asyncio.gather(
        *(
            api.patch(url, json={"name": f"Vostok {n}"}, headers={"If-Match": '"1"'})
            for n in range(2)
        )
    )
    assert sorted(response.status_code for response in responses) == [200, 412]
    assert (await api.get(url)).headers["etag"] == '"2"'


async def test_delete_is_soft_and_restore_brings_it_back(api: httpx.AsyncClient) -> None:
    project = await create(api, "Skylab")
    url = f"/projects/{project['id']}"
    assert (await api.delete(url)).status_code == 204
    assert_problem(await api.get(url), 404)
    assert_problem(await api.delete(url), 404)
    listed = (await api.get("/projects")).json()["items"]
    assert project["id"] not in [item["id"] for item in listed]
    restored = await api.post(f"{url}/restore")
    assert restored.status_code == 200, restored.text
    assert (await api.get(url)).json()["name"] == "Skylab"
    assert (await api.post(f"{url}/restore")).status_code == 200  # live already: as it is


async def test_delete_checks_an_if_match_it_is_given(api: httpx.AsyncClient) -> None:
    project = await create(api, "Salyut")
    url = f"/projects/{project['id']}"
    assert_problem(await api.delete(url, headers={"If-Match": '"9"'}), 412)
    assert (await api.delete(url, headers={"If-Match": '"1"'})).status_code == 204


async def test_a_deleted_name_is_free_and_restoring_it_then_conflicts(
    api: httpx.AsyncClient,
) -> None:
    first = await create(api, "Soyuz")
    assert (await api.delete(f"/projects/{first['id']}")).status_code == 204
    await create(api, "Soyuz")
    body = assert_problem(await api.post(f"/projects/{first['id']}/restore"), 409)
    assert "Soyuz" in str(body["detail"])
    assert_problem(await api.get(f"/projects/{first['id']}"), 404)
    assert_problem(await api.post(f"/projects/{uuid.uuid4()}/restore"), 404)


async def test_pages_follow_next_links_in_creation_order(api: httpx.AsyncClient) -> None:
    names = [f"page {n}" for n in range(7)]
    for name in names:
        await create(api, name)
    response = await api.get("/projects", params={"limit": 3})
    seen: list[str] = []
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(item["name"] for item in page["items"])
        pages += 1
        if page["next"] is None:
            assert "link" not in response.headers
            break
        assert response.headers["link"] == f'<{page["next"]}>; rel="next"'
        response = await api.get(page["next"])
    assert [name for name in seen if name.startswith("page ")] == names
    assert pages == -(-len(seen) // 3)  # full pages of 3, then the rest


async def test_a_forged_cursor_is_a_400_problem(api: httpx.AsyncClient) -> None:
    for name in ("one", "two", "three"):
        await create(api, name)
    cursor = (await api.get("/projects", params={"limit": 1})).json()["next"].split("after=")[1]
    tail = "xx" if not cursor.endswith("xx") else "yy"
    for forged in ("garbage", cursor[:-2] + tail, "e30." + cursor.split(".")[-1]):
        response = await api.get("/projects", params={"limit": 1, "after": forged})
        assert "cursor" in str(assert_problem(response, 400)["detail"])


async def test_a_limit_out_of_range_is_a_422_problem(api: httpx.AsyncClient) -> None:
    for limit in ("0", "101", "ten"):
        assert_problem(await api.get("/projects", params={"limit": limit}), 422)


async def test_every_response_carries_a_request_id(api: httpx.AsyncClient) -> None:
    given = await api.get("/projects", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    made = await api.get(f"/projects/{uuid.uuid4()}", headers={"X-Request-ID": "bad id!"})
    assert made.headers["x-request-id"] != "bad id!"
    assert made.json()["request_id"] == made.headers["x-request-id"]
