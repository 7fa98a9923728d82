"""The API on a migrated database, called in-process over httpx as the runtime role.

The database is migrated with ``alembic upgrade head`` by the test server's superuser (standing
in for the owner role); the API connects as a role created here like the runtime role of
production: LOGIN, no superuser, no BYPASSRLS, owns nothing, reads and writes rows only.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from pgkeel.database import conninfo
from pgkeel.testing.databases import create_database, drop_database
from psycopg import sql
from sqlalchemy.engine import URL

from app.api import create_app
from app.core.config import MIGRATION_DATABASE_URL, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    """The API runs on asyncio (as under uvicorn)."""
    return "asyncio"


def url_text(url: URL) -> str:
    """A URL as text, password included."""
    return url.render_as_string(hide_password=False)


def migrate(url: URL) -> None:
    """``alembic upgrade head`` on ``url``, as the service's Alembic configuration does it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MIGRATION_DATABASE_URL, url_text(url))
        command.upgrade(Config(toml_file=str(ROOT / "pyproject.toml")), "head")


@pytest.fixture(scope="module")
def migrated_database(pgkeel_server_url: URL) -> Iterator[URL]:
    """A database at the head revision, dropped after the module."""
    name = f"api_{secrets.token_hex(6)}"
    url = create_database(pgkeel_server_url, name)
    migrate(url)
    yield url
    drop_database(pgkeel_server_url, name)


@pytest.fixture(scope="module")
def runtime_url(pgkeel_server_url: URL, migrated_database: URL) -> Iterator[URL]:
    """The URL of a runtime role on the migrated database: row-level security binds it."""
    role, password = f"api_runtime_{secrets.token_hex(4)}", secrets.token_hex(12)
    identifier = sql.Identifier(role)
    with psycopg.connect(conninfo(pgkeel_server_url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOBYPASSRLS").format(
                identifier, sql.Literal(password)
            )
        )
    with psycopg.connect(conninfo(migrated_database), autocommit=True) as database:
        database.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(identifier))
        database.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(identifier)
        )
    yield migrated_database.set(username=role, password=password)
    with psycopg.connect(conninfo(migrated_database), autocommit=True) as database:
        database.execute(sql.SQL("DROP OWNED BY {}").format(identifier))
    with psycopg.connect(conninfo(pgkeel_server_url), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(identifier))


def build_app(url: URL) -> FastAPI:
    """The service's application on ``url``."""
    return create_app(Settings(database_url=url_text(url), migration_database_url=None))


@pytest.fixture
def app(runtime_url: URL) -> FastAPI:
    """The application as the runtime role (tests may add routes before it starts)."""
    return build_app(runtime_url)


def client_for(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in-process; errors come back as 500 responses."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://service", headers=headers)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the started application (its lifespan runs around the test)."""
    async with app.router.lifespan_context(app), client_for(app) as started:
        yield started
{%- if cookiecutter.__tenants == "yes" %}


async def new_tenant(client: httpx.AsyncClient) -> str:
    """The id of a new tenant, created over the API."""
    response = await client.post("/tenants", json={"name": f"tenant {secrets.token_hex(4)}"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def api(client: httpx.AsyncClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client acting for a new tenant (its ``X-Tenant-ID`` on every request)."""
    async with client_for(app, **{"X-Tenant-ID": await new_tenant(client)}) as tenant_client:
        yield tenant_client
{%- else %}


@pytest.fixture
def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client of the API's resources."""
    return client
{%- endif %}
