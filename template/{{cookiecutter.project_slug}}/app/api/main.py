"""The application factory: routes, middleware, error handlers, and the engine's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pgkeel import create_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine

from app import NAME
from app.api import health, projects{% if cookiecutter.__tenants == "yes" %}, tenants{% endif %}
from app.api.observability import RequestIdMiddleware, install_request_id_in_logs
from app.api.problems import install_problem_handlers
{%- if cookiecutter.__tenants == "yes" %}
from app.api.tenancy import TenantMiddleware
{%- endif %}
from app.core.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application on ``settings`` (default: read from the environment)."""
    chosen = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """One engine for the life of the process, disposed of when it stops."""
        engine = create_async_engine(chosen.require_database_url(), pool_pre_ping=True)
        app.state.engine = engine
        app.state.sessions = create_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            await engine.dispose()

    install_request_id_in_logs()
    app = FastAPI(title=NAME, lifespan=lifespan)
{%- if cookiecutter.__tenants == "yes" %}
    app.add_middleware(TenantMiddleware)
{%- endif %}
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so it sees every log line
    install_problem_handlers(app)
    app.include_router(health.router)
{%- if cookiecutter.__tenants == "yes" %}
    app.include_router(tenants.router)
{%- endif %}
    app.include_router(projects.router)
{%- if cookiecutter.__tenants == "yes" %}
    app.include_router(projects.pages)
{%- endif %}
    return app
