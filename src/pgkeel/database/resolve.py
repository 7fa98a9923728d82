"""The one place that decides where PostgreSQL comes from.

In order: ``DATABASE_URL``; PostgreSQL binaries on this machine (a throwaway cluster); the
``pgserver`` wheel (the same, with its bundled binaries); a testcontainers PostgreSQL when a
Docker engine answers; else an error listing every source tried, why it failed and how to fix it.
The CLI, the pytest plugin and generated services all go through ``provide_server``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy.engine import URL

from pgkeel.database.binaries import Attempt, find_binaries
from pgkeel.database.cluster import throwaway_cluster
from pgkeel.database.url import DATABASE_URL_ENV, URL_EXAMPLE, parse_database_url
from pgkeel.errors import DatabaseError, DatabaseNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

DEFAULT_IMAGE = "postgres:16-alpine"
DOCKER_SOCKET = "/var/run/docker.sock"
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server: the URL of its maintenance database, and where it came from."""

    url: URL
    origin: str


def conninfo(url: URL) -> str:
    """The URL as a libpq connection string for psycopg: ``key=value`` pairs, each quoted.

    Built from the URL's parts rather than its text: SQLAlchemy's rendering leaves a space of a
    role or database name as it is, which libpq refuses in a URL (``Night Batch``).
    """
    options = {
        key: ",".join(value) if isinstance(value, tuple) else value
        for key, value in url.query.items()
    }
    return psycopg.conninfo.make_conninfo(
        "",
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        **options,
    )


def check_connects(url: URL, *, source: str = DATABASE_URL_ENV) -> None:
    """Open and close one connection; raise a one-paragraph error naming the server if it fails."""
    try:
        psycopg.connect(conninfo(url), connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        fix = f"start that server or correct {source}"
        if source == DATABASE_URL_ENV:
            fix += "; unset it to let pgkeel start a throwaway PostgreSQL instead"
        raise DatabaseError(
            f"Cannot connect to the server in {source} "
            f"({url.render_as_string(hide_password=True)}): {reason}. Fix: {fix}."
        ) from None


@contextmanager
def provide_server(
    environ: Mapping[str, str] | None = None,
    *,
    image: str = DEFAULT_IMAGE,
    container_only: bool = False,
    prefer_major: int | None = None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """A PostgreSQL server for this process, from the first source that can serve.

    ``prefer_major``: of several PostgreSQL versions installed here, the one to run.

    With ``container_only``, the server is always a testcontainers one, even when
    ``DATABASE_URL`` is set or PostgreSQL is installed here. ``settings`` are server settings
    for a throwaway cluster (a given server or a container is used as it is).
    """
    if container_only:
        with _container_server([], image) as server:
            yield server
        return
    env = os.environ if environ is None else environ
    raw = env.get(DATABASE_URL_ENV, "").strip()
    if raw:
        url = parse_database_url(raw)
        check_connects(url)
        yield Server(url, DATABASE_URL_ENV)
        return
    attempts = [
        Attempt(
            DATABASE_URL_ENV, "not set", f"export {DATABASE_URL_ENV}={URL_EXAMPLE} (your server)"
        )
    ]
    binaries = find_binaries(attempts, prefer=prefer_major)
    if binaries is not None:
        with throwaway_cluster(binaries, settings) as cluster:
            yield Server(cluster.url(), f"throwaway cluster from {binaries.origin}")
        return
    with _container_server(attempts, image) as server:
        yield server


@contextmanager
def _container_server(attempts: list[Attempt], image: str) -> Iterator[Server]:
    container_class = _docker_postgres(attempts)
    if container_class is None:
        raise DatabaseNotFoundError(not_found_message(attempts))
    with container_class(image, driver="psycopg") as container:
        url = parse_database_url(container.get_connection_url(), source="testcontainers")
        yield Server(url, f"testcontainers ({image})")


def _docker_postgres(attempts: list[Attempt]) -> type | None:
    try:
        import docker  # noqa: PLC0415  # optional: only with pgkeel[testcontainers]

        postgres_module = importlib.import_module(_container_module())
    except ImportError:
        attempts.append(
            Attempt(
                "testcontainers",
                "not installed",
                "`pip install 'pgkeel[testcontainers]'` and run a Docker engine",
            )
        )
        return None
    with suppress(Exception):  # any failure to reach Docker means "no engine answers"
        if not _docker_endpoint_exists():
            raise ConnectionError(DOCKER_SOCKET)
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
        return postgres_module.PostgresContainer  # type: ignore[no-any-return]
    attempts.append(
        Attempt(
            "testcontainers",
            "no Docker engine answers",
            "start Docker (or Podman with DOCKER_HOST)",
        )
    )
    return None


def _docker_endpoint_exists() -> bool:
    """Whether DOCKER_HOST is set or the default socket exists.

    The docker client leaks a socket when it fails to connect, so it is not asked in vain.
    """
    return bool(os.environ.get("DOCKER_HOST")) or Path(DOCKER_SOCKET).exists()


def _container_module() -> str:
    """Where this testcontainers version keeps PostgresContainer (it moved in 4.x)."""
    if importlib.util.find_spec("testcontainers.community.postgres") is not None:
        return "testcontainers.community.postgres"
    return "testcontainers.postgres"


def not_found_message(attempts: list[Attempt]) -> str:
    """The error text when no source could provide PostgreSQL."""
    tried = "\n".join(attempt.describe() for attempt in attempts)
    return f"No PostgreSQL server could be found or started. Tried, in order:\n{tried}"
