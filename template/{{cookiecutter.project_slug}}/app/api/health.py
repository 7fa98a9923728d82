"""``/healthz``: the process answers. ``/readyz``: it can serve (database, migrations, role)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
{%- if cookiecutter.__tenants == "yes" %}
from pgkeel.roles import runtime_role_problems
{%- endif %}
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.problems import problem_response
{%- if cookiecutter.__tenants == "yes" %}
from app.models import Base
{%- endif %}

MIGRATIONS = Path(__file__).resolve().parents[1] / "alembic"
_log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (it does not touch the database)."""
    return {"status": "ok"}


def migration_heads() -> set[str]:
    """The head revisions of the migrations shipped with this code."""
    return set(ScriptDirectory(str(MIGRATIONS)).get_heads())


async def _database(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        await connection.execute(text("select 1"))
    return "ok"


async def _applied_revisions(engine: AsyncEngine) -> set[str]:
    """The revisions in the database's alembic_version; none before the first migration."""
    async with engine.connect() as connection:
        table = await connection.scalar(text("select to_regclass('alembic_version')"))
        if table is None:
            return set()
        rows = await connection.execute(text("select version_num from alembic_version"))
        return set(rows.scalars())


async def _migrations(engine: AsyncEngine) -> str:
    applied = await _applied_revisions(engine)
    heads = migration_heads()
    if applied != heads:
        return (
            f"the database is at {sorted(applied) or 'no revision'}, the code at {sorted(heads)}. "
            "Fix: run `alembic upgrade head` (the migrate service) as the owner role."
        )
    return "ok"
{%- if cookiecutter.__tenants == "yes" %}


async def _runtime_role(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        problems = await connection.run_sync(runtime_role_problems, Base.metadata)
    return " ".join(f"[{problem.rule}] {problem.message}" for problem in problems) or "ok"
{%- endif %}


CHECKS = {
    "database": _database,
    "migrations": _migrations,
{%- if cookiecutter.__tenants == "yes" %}
    "runtime_role": _runtime_role,
{%- endif %}
}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when every check passes; 503 with each failing check's reason otherwise."""
    engine: AsyncEngine = request.app.state.engine
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            checks[name] = await check(engine)
        except (SQLAlchemyError, OSError) as error:
            # The driver's message (hosts, ports, roles) goes to the log, not to the caller.
            _log.warning("readiness check %s failed: %s", name, error)
            checks[name] = f"failed ({type(error).__name__}): see the service's log"
    failing = [f"{name}: {said.rstrip('.')}" for name, said in checks.items() if said != "ok"]
    if failing:
        return problem_response(
            request.url.path, 503, "Not ready", "; ".join(failing) + ".", checks=checks
        )
    return JSONResponse({"status": "ready", "checks": checks})
