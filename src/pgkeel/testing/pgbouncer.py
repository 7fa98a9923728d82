"""A throwaway PgBouncer in transaction-pooling mode, in front of a test server.

Transaction pooling hands each transaction whatever server connection is free, so anything
session-scoped (``SET``, ``set_config(..., false)``, prepared statements, advisory locks, temp
tables) can leak to another client or vanish. Code that is meant to run behind PgBouncer must be
tested behind a real one::

    with pgbouncer(postgres_url, pool_size=1) as bouncer:
        engine = create_engine(bouncer.url, connect_args={"prepare_threshold": None})

The process runs as the unprivileged server user when the tests run as root (PgBouncer refuses
root), listens on a free port of 127.0.0.1, keeps its configuration, log and pid file in its own
temporary directory, and is gone, directory included, when the block exits, on an exception, and
on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from pgkeel.database import check_connects, conninfo, parse_database_url
from pgkeel.database.osuser import ServerUser, server_user
from pgkeel.database.process import (
    cleanup_on_exit,
    die_with_parent,
    forget,
    free_port,
    make_scratch_dir,
    remove_stale_scratch_dirs,
    stop_process,
)
from pgkeel.errors import PgkeelError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import URL

PGBOUNCER_ENV = "PGKEEL_PGBOUNCER"
FALLBACK_PATHS = (Path("/usr/sbin/pgbouncer"), Path("/usr/local/sbin/pgbouncer"))
READY_TIMEOUT_S = 30.0
START_ATTEMPTS = 3
ADMIN_DATABASE = "pgbouncer"
CONNECT_ARGS: dict[str, object] = {"prepare_threshold": None}
"""psycopg arguments for connections through PgBouncer: no server-side prepared statements."""


class PgBouncerNotFoundError(PgkeelError):
    """The ``pgbouncer`` program is not installed; the message says how to install it."""


class PgBouncerError(PgkeelError):
    """PgBouncer is installed but did not start; the message quotes its log."""


class PgBouncerSettingError(PgkeelError):
    """``PGKEEL_PGBOUNCER`` is set but names nothing runnable: an error, never a skip."""


def find_pgbouncer() -> str | None:
    """Path of the ``pgbouncer`` program: ``PGKEEL_PGBOUNCER``, else PATH, else /usr/sbin.

    ``None`` when it is not installed. A ``PGKEEL_PGBOUNCER`` that names nothing runnable raises
    ``PgBouncerSettingError``: the tests it would run must not be skipped in silence.
    """
    forced = os.environ.get(PGBOUNCER_ENV)
    if forced:
        found = shutil.which(forced)
        if found is None:
            raise PgBouncerSettingError(
                f"{PGBOUNCER_ENV} is {forced!r}, which is not a program this user can run (no "
                f"such file, a directory, or not executable). Fix: set {PGBOUNCER_ENV} to the "
                "path of the pgbouncer program (`command -v pgbouncer`, often "
                "/usr/sbin/pgbouncer), or unset it to search PATH and /usr/sbin."
            )
        return found
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((str(path) for path in FALLBACK_PATHS if os.access(path, os.X_OK)), None)


def not_found_message() -> str:
    """Why PgBouncer tests cannot run here, and how to make them run."""
    places = ", ".join(["PATH", *(str(path) for path in FALLBACK_PATHS)])
    return (
        f"pgbouncer is not installed ({PGBOUNCER_ENV} is unset; looked in {places}). Fix: "
        "install it "
        "(Debian/Ubuntu: `apt-get install pgbouncer`; macOS: `brew install pgbouncer`; or run "
        f"`make system-deps` as root), or set {PGBOUNCER_ENV} to the program's path."
    )


def _quote(value: str) -> str:
    """A value in PgBouncer's auth_file syntax: double quotes, inner quotes doubled."""
    return '"' + value.replace('"', '""') + '"'


@dataclass(frozen=True)
class BouncerConfig:
    """What one PgBouncer serves: the server behind it, and who may connect."""

    server: URL
    users: Mapping[str, str]
    pool_mode: str = "transaction"
    pool_size: int = 2
    max_client_conn: int = 100

    def ini(self, directory: Path, port: int) -> str:
        """The ``pgbouncer.ini`` text: every database of the server, trust auth on loopback."""
        host = self.server.host or str(self.server.query.get("host") or "localhost")
        target = psycopg.conninfo.make_conninfo(host=host, port=self.server.port or 5432)
        admins = ",".join(self.users)
        return "\n".join(
            [
                "[databases]",
                f"* = {target}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {directory / 'userlist.txt'}",
                f"admin_users = {admins}",
                f"stats_users = {admins}",
                f"pool_mode = {self.pool_mode}",
                f"default_pool_size = {self.pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                f"max_client_conn = {self.max_client_conn}",
                "query_wait_timeout = 30",
                f"pidfile = {directory / 'pgbouncer.pid'}",
                "",
            ]
        )

    def userlist(self) -> str:
        """The ``auth_file``: every user that may connect, with the password PgBouncer sends on."""
        return "".join(f"{_quote(user)} {_quote(pw)}\n" for user, pw in self.users.items())


@dataclass
class PgBouncer:
    """A running PgBouncer: its port, its directory, and URLs of the databases behind it."""

    program: str
    config: BouncerConfig
    directory: Path
    user: ServerUser
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> URL:
        """SQLAlchemy URL of the server URL's own database, through PgBouncer."""
        return self.url_for(self.config.server.database or "postgres")

    def url_for(self, database: str, user: str | None = None) -> URL:
        """SQLAlchemy URL of ``database`` through PgBouncer, as ``user`` (default: the URL's).

        PgBouncer trusts its clients on loopback, so another user's URL carries no password.
        """
        server = self.config.server
        return server.set(
            host="127.0.0.1",
            port=self.port,
            database=database,
            username=user or server.username,
            password=None if user else server.password,
            query={},
        )

    @property
    def log_file(self) -> Path:
        """PgBouncer's log (its standard error)."""
        return self.directory / "pgbouncer.log"

    @property
    def pid(self) -> int | None:
        """The process id (None before the first start)."""
        return self.process.pid if self.process is not None else None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the log, for error messages."""
        with suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return "(no log was written)"

    def _write(self, name: str, text: str) -> Path:
        path = self.directory / name
        path.write_text(text)
        path.chmod(0o600)
        self.user.give(path)
        return path

    def start(self) -> None:
        """Start PgBouncer on a free port, retrying when another process takes the port first."""
        self._write("userlist.txt", self.config.userlist())
        for _attempt in range(START_ATTEMPTS):
            self.port = free_port()
            ini = self._write("pgbouncer.ini", self.config.ini(self.directory, self.port))
            self._spawn(ini)
            if self._wait_until_ready():
                return
            if "Address already in use" not in self.log_tail():
                break
        raise PgBouncerError(
            f"PgBouncer ({self.program}) did not start on 127.0.0.1:{self.port} in front of "
            f"{self.config.server.render_as_string(hide_password=True)}. Its log says:\n"
            f"{self.log_tail()}\nFix: check that `{self.program} --version` runs as "
            f"{self.user.name!r}, or set {PGBOUNCER_ENV} to a working PgBouncer (1.12 or newer)."
        )

    def _spawn(self, ini: Path) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [self.program, str(ini)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509  # only prctl(2)
                **self.user.subprocess_options(),
            )

    def _wait_until_ready(self) -> bool:
        """Whether PgBouncer lets a client in before the process dies or time runs out."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        admin = conninfo(self.url_for(ADMIN_DATABASE))
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with suppress(psycopg.OperationalError):
                psycopg.connect(admin, connect_timeout=2, autocommit=True).close()
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the process and remove the directory."""
        forget(self.stop)
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM, timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


def _as_url(url: str | URL) -> URL:
    raw = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return parse_database_url(raw, source="the URL given to PgBouncer")


def _users(server: URL, users: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """Every user in the auth_file: the server URL's (with its password) and the extra ones."""
    extra = dict(users) if isinstance(users, Mapping) else dict.fromkeys(users, "")
    return {server.username or "postgres": server.password or "", **extra}


def start_pgbouncer(
    server_url: str | URL,
    *,
    users: Iterable[str] | Mapping[str, str] = (),
    pool_size: int = 2,
    pool_mode: str = "transaction",
) -> PgBouncer:
    """Start PgBouncer in front of ``server_url``'s server; call ``stop()`` (or use ``pgbouncer``).

    ``users`` are extra roles that may connect (names, or a mapping of name to password when the
    server asks for one); the URL's own user is always allowed. Every database of the server is
    reachable; ``url`` points at the URL's own database.
    """
    program = find_pgbouncer()
    if program is None:
        raise PgBouncerNotFoundError(not_found_message())
    server = _as_url(server_url)
    check_connects(server, source="the URL given to PgBouncer")
    remove_stale_scratch_dirs()
    user = server_user()
    directory = make_scratch_dir("pgbouncer")
    user.give(directory)
    config = BouncerConfig(server, _users(server, users), pool_mode, pool_size)
    bouncer = PgBouncer(program, config, directory, user)
    cleanup_on_exit(bouncer.stop)
    try:
        bouncer.start()
    except BaseException:
        bouncer.stop()
        raise
    return bouncer


@contextmanager
def pgbouncer(
    server_url: str | URL,
    *,
    users: Iterable[str] | Mapping[str, str] = (),
    pool_size: int = 2,
    pool_mode: str = "transaction",
) -> Iterator[PgBouncer]:
    """A running PgBouncer in front of ``server_url``'s server, gone when the block exits."""
    bouncer = start_pgbouncer(server_url, users=users, pool_size=pool_size, pool_mode=pool_mode)
    try:
        yield bouncer
    finally:
        bouncer.stop()


class PgBouncers:
    """Starts PgBouncers on demand and stops them all at once (the ``pgbouncer_factory``)."""

    def __init__(self) -> None:
        self._started: list[PgBouncer] = []

    def __call__(
        self,
        server_url: str | URL,
        *,
        users: Iterable[str] | Mapping[str, str] = (),
        pool_size: int = 2,
        pool_mode: str = "transaction",
    ) -> PgBouncer:
        """Start one more PgBouncer (see ``start_pgbouncer``); it runs until ``stop_all``."""
        bouncer = start_pgbouncer(server_url, users=users, pool_size=pool_size, pool_mode=pool_mode)
        self._started.append(bouncer)
        return bouncer

    def stop_all(self) -> None:
        """Stop every PgBouncer started here, newest first."""
        while self._started:
            self._started.pop().stop()
