"""The template's HTTP service under load: pgkeel's list endpoint vs the same one by hand.

The benchmark renders the template (multi-tenant, FastAPI), installs the service in a
virtualenv of its own with pgkeel from this checkout, migrates a database as its owner, seeds 3
tenants with 2,000 projects each, and connects both applications as a runtime role (no superuser,
no BYPASSRLS): the service's ``create_app()`` and the same endpoint written by hand with FastAPI
and SQLAlchemy, with the same checks, round trips and response (``bench/_http_load.py``), in two
forms: on an ``AsyncSession`` with a mapped model and an ORM select, as the service's endpoint is
written (the baseline of the goals: what pgkeel adds to such an endpoint), and in textual SQL on
a connection (what leaving the ORM out altogether would save, reported beside it). Concurrent
asyncio clients page through ``GET /projects?limit=20`` in-process (httpx's ASGI transport, so no
socket or server process adds noise) for a fixed time per round; the three take turns.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from cookiecutter.main import cookiecutter
from psycopg import sql
from sqlalchemy.engine import URL

from pgkeel.database import conninfo, provide_server
from pgkeel.testing.databases import create_database

TITLE = "HTTP: the template's list endpoint under load, pgkeel vs hand-written FastAPI"
ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("_http_load.py")
TENANTS = 3
PROJECTS = 2_000
CLIENTS = 24
SECONDS = 4
ROUNDS = 3  # sized so that `make bench` as a whole stays under 10 minutes
GOALS = {"throughput": 0.9, "p99": 1.2}
_SETUP = (
    "{tenants} tenants x {projects:,} projects; {clients} concurrent clients (spread over the "
    "tenants) page through `GET /projects?limit=20` following `next`, for {seconds} s per round "
    "after a 0.5 s warm-up; {rounds} rounds each, taking turns. All applications: the same "
    "database, the same runtime role (row-level security on), the same pool settings, the same "
    "round trips per request (the tenant setting and the keyset query; the tenant's existence, "
    "for the 404, is checked only when a page is empty, since a row of the page proves it), the "
    "same JSON page and `Link` header; in-process (httpx's ASGI transport), so the clients' "
    "CPU is in the figures of both. Ratios are medians of the per-round pairs. Load average "
    "(1 min) before and after: {before:.1f}, {after:.1f}."
)


def _install(workdir: Path) -> tuple[Path, Path]:
    """The rendered service and its virtualenv's python."""
    config = workdir / "cookiecutter.yaml"
    config.write_text(f"replay_dir: {workdir / 'replay'}\ncookiecutters_dir: {workdir / 'cc'}\n")
    service = Path(
        cookiecutter(
            str(ROOT / "template"),
            no_input=True,
            output_dir=str(workdir),
            config_file=str(config),
            extra_context={"pgkeel_requirement": str(ROOT)},
        )
    )
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin/python"),
            "install",
            "-q",
            "-e",
            f"{ROOT}[alembic]",  # pip does not read the service's [tool.uv.sources] entry
            "-e",
            str(service),
            "httpx",  # the load driver's client (one of the service's dev tools)
        ],
        check=True,
    )
    return service, venv / "bin" / "python"


def _service_env(python: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VIRTUAL_ENV"}}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def _prepare(url: URL, service: Path, python: Path) -> tuple[URL, list[str]]:
    """Migrate, seed, and create the runtime role; its URL and the tenant ids."""
    text_url = url.render_as_string(hide_password=False)
    subprocess.run(
        [str(python.parent / "alembic"), "upgrade", "head"],
        cwd=service,
        env=_service_env(python, MIGRATION_DATABASE_URL=text_url),
        check=True,
        capture_output=True,
    )
    role, password = f"bench_http_{secrets.token_hex(3)}", secrets.token_hex(12)
    with psycopg.connect(conninfo(url), autocommit=True) as owner:
        owner.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOBYPASSRLS").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        owner.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(sql.Identifier(role))
        )
        tenants = [
            str(
                owner.execute(
                    "INSERT INTO tenants (name) VALUES (%s) RETURNING id", (f"tenant {n}",)
                ).fetchone()[0]
            )  # type: ignore[index]
            for n in range(TENANTS)
        ]
        for tenant in tenants:
            owner.execute(
                "INSERT INTO projects (tenant_id, name, created_at) "
                "SELECT %s, 'project ' || n, now() - n * interval '1 second' "
                "FROM generate_series(1, %s) n",
                (tenant, PROJECTS),
            )
        owner.execute("VACUUM ANALYZE projects")
    return url.set(username=role, password=password), tenants


def _load(
    python: Path, service: Path, runtime: URL, tenants: list[str]
) -> dict[str, list[dict[str, float]]]:
    result = subprocess.run(
        [
            str(python),
            str(DRIVER),
            runtime.render_as_string(hide_password=False),
            str(CLIENTS),
            str(SECONDS),
            str(ROUNDS),
            *tenants,
        ],
        cwd=service,
        env=_service_env(python),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


_APPLICATIONS = {
    "pgkeel": "the service's `create_app()` (pgkeel)",
    "orm": "baseline: the same endpoint by hand, FastAPI + SQLAlchemy ORM (`AsyncSession`)",
    "hand": "context: the same endpoint by hand, FastAPI + SQLAlchemy textual SQL",
}


def _ratios(results: dict[str, list[dict[str, float]]], baseline: str) -> tuple[float, float]:
    """Median per-round throughput and p99 ratios of pgkeel to ``baseline``."""
    pairs = list(zip(results["pgkeel"], results[baseline], strict=True))
    throughput = statistics.median(p["rps"] / b["rps"] for p, b in pairs)
    p99 = statistics.median(p["p99"] / b["p99"] for p, b in pairs)
    return throughput, p99


def _report(results: dict[str, list[dict[str, float]]], load: tuple[float, ...]) -> str:
    rows = []
    for name, label in _APPLICATIONS.items():
        rounds = results[name]
        rows.append(
            f"| {label} | {statistics.median(r['rps'] for r in rounds):,.0f} | "
            f"{statistics.median(r['p50'] for r in rounds) * 1000:.1f} ms | "
            f"{statistics.median(r['p99'] for r in rounds) * 1000:.1f} ms | "
            f"{sum(r['requests'] for r in rounds):,.0f} |"
        )
    throughput, p99 = _ratios(results, "orm")
    text_throughput, text_p99 = _ratios(results, "hand")
    verdict = {
        "throughput": "met" if throughput >= GOALS["throughput"] else "NOT met",
        "p99": "met" if p99 <= GOALS["p99"] else "NOT met",
    }
    return "\n".join(
        [
            _SETUP.format(
                tenants=TENANTS,
                projects=PROJECTS,
                clients=CLIENTS,
                seconds=SECONDS,
                rounds=ROUNDS,
                before=load[0],
                after=load[1],
            ),
            "",
            "| application | requests/s (median round) | p50 | p99 | requests |",
            "|---|---|---|---|---|",
            *rows,
            "",
            (
                f"Goals, pgkeel against the same ORM endpoint by hand: throughput ratio >= "
                f"{GOALS['throughput']}: {throughput:.2f}, {verdict['throughput']}. p99 latency "
                f"ratio <= {GOALS['p99']}: {p99:.2f}, {verdict['p99']}. Against the textual-SQL "
                f"endpoint (no ORM at all): throughput {text_throughput:.2f}, p99 "
                f"{text_p99:.2f}."
            ),
        ]
    )


def run() -> str:
    """Render, install, seed, load; the report section."""
    workdir = Path(tempfile.mkdtemp(prefix="pgkeel-bench-http-"))
    try:
        service, python = _install(workdir)
        with provide_server({}) as server:
            url = create_database(server.url, "bench_http")
            runtime, tenants = _prepare(url, service, python)
            before = os.getloadavg()[0]
            results = _load(python, service, runtime, tenants)
            after = os.getloadavg()[0]
        return _report(results, (before, after))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
