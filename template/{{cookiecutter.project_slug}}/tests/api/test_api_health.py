"""Health and readiness, and the request id in every log line of a request."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from pgkeel.testing.databases import create_database, drop_database
from sqlalchemy.engine import URL

from app.api.__main__ import port
from tests.api.conftest import build_app, client_for

pytestmark = pytest.mark.anyio


async def readiness(app: FastAPI) -> httpx.Response:
    """``GET /readyz`` of ``app``, started for the call."""
    async with app.router.lifespan_context(app), client_for(app) as client:
        return await client.get("/readyz")


@pytest.fixture
def empty_database(pgkeel_server_url: URL) -> Iterator[URL]:
    """A database without the service's tables."""
    name = f"unmigrated_{secrets.token_hex(6)}"
    url = create_database(pgkeel_server_url, name)
    yield url
    drop_database(pgkeel_server_url, name)


async def test_healthz_answers_without_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_as_the_runtime_role_on_a_migrated_database(app: FastAPI) -> None:
    response = await readiness(app)
    assert response.status_code == 200, response.text
    assert set(response.json()["checks"].values()) == {"ok"}


async def test_not_ready_before_the_migrations(empty_database: URL) -> None:
    response = await readiness(build_app(empty_database))
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    migrations = checks["migrations"]
    assert migrations.startswith("the database is at no revision, the code at [")
    assert migrations.endswith(
        "]. Fix: run `alembic upgrade head` (the migrate service) as the owner role."
    )
    detail = response.json()["detail"]
    assert f"migrations: {migrations.rstrip('.')}" in detail
    assert ".." not in detail


async def test_not_ready_when_the_database_does_not_answer(
    runtime_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    response = await readiness(build_app(runtime_url.set(host="127.0.0.1", port=1)))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["database"].startswith("failed (OperationalError)")
    for secret in ("127.0.0.1", "port 1"):  # the driver's text names the host and port
        assert secret not in response.text
        assert secret in caplog.text  # ... is in the service's log


async def test_a_route_answers_503_when_the_database_does_not_answer(
    runtime_url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(runtime_url.set(host="127.0.0.1", port=1))
    headers = {"X-Tenant-ID": str(uuid.uuid4())}
    async with app.router.lifespan_context(app), client_for(app, **headers) as client:
        response = await client.get("/projects")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert "Retry" in response.json()["detail"]
    assert "127.0.0.1" not in response.text
    assert "127.0.0.1" in caplog.text
{%- if cookiecutter.__tenants == "yes" %}


async def test_not_ready_as_a_role_that_bypasses_row_level_security(
    migrated_database: URL,
) -> None:
    response = await readiness(build_app(migrated_database))  # the server's superuser
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["migrations"] == "ok"
    assert "superuser" in checks["runtime_role"]
{%- endif %}


async def test_every_log_line_of_a_request_has_its_id(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("app.test")

    async def chatty() -> dict[str, str]:
        log.info("working")
        return {"status": "done"}

    async def broken() -> None:
        log.warning("about to fail")
        raise RuntimeError("boom")

    app.add_api_route("/test/chatty", chatty)
    app.add_api_route("/test/broken", broken)
    caplog.set_level(logging.INFO)
    async with app.router.lifespan_context(app), client_for(app) as client:
        ok = await client.get("/test/chatty", headers={"X-Request-ID": "req-1"})
        failed = await client.get("/test/broken", headers={"X-Request-ID": "req-2"})
    assert ok.status_code == 200
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert "boom" not in failed.text  # the details stay in the log
    by_message = {record.getMessage(): record for record in caplog.records}
    assert by_message["working"].request_id == "req-1"  # type: ignore[attr-defined]
    assert by_message["about to fail"].request_id == "req-2"  # type: ignore[attr-defined]
    errors = [record for record in caplog.records if record.exc_info]
    assert [record.request_id for record in errors] == ["req-2"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("given", ["abc", "0", "70000", "-1"])
async def test_a_port_that_is_none_stops_with_one_line(
    given: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", given)
    with pytest.raises(SystemExit) as stopped:
        port()
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        f"error: PORT={given!r} is not a TCP port. Fix: PORT=8000 (1 to 65535).\n"
    )
