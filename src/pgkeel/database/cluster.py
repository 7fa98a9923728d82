"""PostgreSQL clusters pgkeel creates: throwaway ones for tests, a persistent one for development.

A throwaway cluster lives in a temporary directory, runs with settings that trade durability for
speed, and leaves no process and no directory behind on normal exit, on an exception, and on
SIGTERM or SIGINT. A persistent cluster lives in a service's ``.pgkeel/`` directory and is
managed by ``pgkeel db start|stop|status|url``.
"""

from __future__ import annotations

import json
import pwd
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy.engine import URL

from pgkeel.database.devroles import ensure_dev_roles
from pgkeel.database.osuser import ServerUser, binaries_for, check_reachable, server_user
from pgkeel.database.process import (
    cleanup_on_exit,
    die_with_parent,
    forget,
    free_port,
    make_scratch_dir,
    port_free,
    remove_stale_scratch_dirs,
    stable_port,
    stop_process,
)
from pgkeel.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pgkeel.database.binaries import PostgresBinaries

SUPERUSER = "postgres"
READY_TIMEOUT_S = 60.0
STATE_FILE = "pgkeel.json"
LOG_FILE = "postgres.log"
DEV_PORTS = range(5433, 5533)  # next to PostgreSQL's 5432, below the ephemeral port range
SOCKET_PATH_MAX = 100  # sun_path holds 104-108 bytes, ".s.PGSQL.NNNNN" included
THROWAWAY_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "200",
    "listen_addresses": "127.0.0.1",
}


_PORT_WAIT_S = 2.0
"""How long a start waits for its saved port: a server just killed frees it a moment later."""


def _port_frees(port: int) -> bool:
    """Whether ``port`` is free now or within ``_PORT_WAIT_S`` (else another program holds it)."""
    deadline = time.monotonic() + _PORT_WAIT_S
    while not port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@dataclass
class Cluster:
    """One PostgreSQL data directory and the server running on it."""

    binaries: PostgresBinaries
    directory: Path
    user: ServerUser
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        """The cluster's ``PGDATA``."""
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        """Where the server writes its log."""
        return self.directory / LOG_FILE

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> URL:
        """SQLAlchemy URL (psycopg 3 driver) for ``database`` as ``user`` (the superuser)."""
        return URL.create(
            "postgresql+psycopg",
            username=user,
            host="127.0.0.1",
            port=self.port,
            database=database,
        )

    def run_tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of the server programs as the server user, in the cluster directory."""
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            check=False,
            cwd=self.directory,
            **self.user.subprocess_options(),
        )

    def initialize(self) -> None:
        """Run ``initdb`` (trust auth on loopback, UTF-8, superuser ``postgres``)."""
        result = self.run_tool(
            self.binaries.tool("initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        )
        if result.returncode != 0:
            raise DatabaseError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}): "
                f"{result.stderr.strip()}\nFix: check that {self.user.name!r} can write "
                f"{self.directory}, or remove it and try again."
            )

    def start_foreground(self, settings: dict[str, str]) -> None:
        """Start ``postgres`` as a child process and wait until it accepts connections."""
        options = [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]
        command = [
            self.binaries.tool("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            self.socket_directory(),
            *options,
        ]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGQUIT),  # noqa: PLW1509  # only prctl(2)
                **self.user.subprocess_options(),
            )
        self.wait_until_ready()

    def socket_directory(self) -> str:
        """The cluster directory for the Unix socket, or '' (TCP only) when its path is too long."""
        return str(self.directory) if len(str(self.directory)) < SOCKET_PATH_MAX else ""

    def wait_until_ready(self) -> None:
        """Block until the server answers a query; raise with the log's tail if it dies first."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            with suppress(psycopg.OperationalError):
                psycopg.connect(self.conninfo(), connect_timeout=2).close()
                return
            time.sleep(0.02)
        raise DatabaseError(
            f"PostgreSQL in {self.data_dir} did not start on port {self.port}. "
            f"Its log says:\n{self.log_tail()}\nFix: read the full log at {self.log_file}."
        )

    def conninfo(self, database: str = "postgres") -> str:
        """The libpq connection string for psycopg, over TCP on loopback."""
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server log, for error messages."""
        with suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return "(no log was written)"

    def stop_foreground(self) -> None:
        """Stop a server started with ``start_foreground`` (immediate shutdown) and reap it."""
        if self.process is not None:
            stop_process(self.process, signal.SIGQUIT)

    def destroy(self) -> None:
        """Stop the server and remove the whole cluster directory (throwaway clusters only)."""
        forget(self.destroy)
        self.stop_foreground()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_throwaway(
    binaries: PostgresBinaries, settings: Mapping[str, str] | None = None
) -> Cluster:
    """Create and start a throwaway cluster; call its ``destroy`` (or use the context manager).

    ``settings`` are server settings on top of the throwaway defaults, such as
    ``{"shared_preload_libraries": "pg_stat_statements"}``.
    """
    remove_stale_scratch_dirs()
    user = server_user()
    runnable = binaries_for(user, binaries)
    directory = make_scratch_dir("cluster")
    user.give(directory)
    cluster = Cluster(runnable, directory, user, free_port())
    cleanup_on_exit(cluster.destroy)
    try:
        check_reachable(user, directory)
        cluster.initialize()
        cluster.start_foreground({**THROWAWAY_SETTINGS, **(settings or {})})
    except BaseException:
        cluster.destroy()
        raise
    return cluster


@contextmanager
def throwaway_cluster(
    binaries: PostgresBinaries, settings: Mapping[str, str] | None = None
) -> Iterator[Cluster]:
    """A running throwaway cluster, gone (process and directory) when the block exits."""
    cluster = start_throwaway(binaries, settings)
    try:
        yield cluster
    finally:
        cluster.destroy()


_CLUSTER_FILES = frozenset({"data", STATE_FILE, LOG_FILE})
"""What a development cluster's directory holds; anything else belongs to someone else."""

_RECORDED_SERVER_WAIT_S = 15
"""How long ``start`` waits for a server recorded as running to answer or to be gone."""


class PersistentCluster:
    """The development cluster of one service, kept in a directory such as ``.pgkeel/``."""

    def __init__(self, directory: Path, binaries: PostgresBinaries) -> None:
        self.directory = directory.resolve()
        self.user = server_user()
        self.binaries = binaries_for(self.user, binaries)

    def _state(self) -> dict[str, int]:
        with suppress(OSError, ValueError):
            state = json.loads((self.directory / STATE_FILE).read_text())
            if isinstance(state, dict) and isinstance(state.get("port"), int):
                return {"port": state["port"]}
        return {}

    def _save_port(self, port: int) -> None:
        (self.directory / STATE_FILE).write_text(json.dumps({"port": port}) + "\n")

    def cluster(self) -> Cluster:
        """The cluster object for this directory (port from the saved state, or a new free one)."""
        port = self._state().get("port") or stable_port(DEV_PORTS)
        return Cluster(self.binaries, self.directory, self.user, port)

    def exists(self) -> bool:
        """Whether ``initdb`` has already run here."""
        return (self.directory / "data" / "PG_VERSION").is_file()

    def check_ownership(self) -> None:
        """Raise when the data directory belongs to another user than the one running the server."""
        data = self.directory / "data"
        if not data.exists():
            return
        owner = data.stat().st_uid
        if owner != self.user.uid:
            raise DatabaseError(
                f"The data directory {data} belongs to uid {owner} ({_user_name(owner)}), but "
                f"PostgreSQL would run as {self.user.name!r} (uid {self.user.uid}). Fix: "
                f"`chown -R {self.user.name} {self.directory}`, or remove {self.directory} to "
                "start afresh, or choose another directory with --dir."
            )

    def check_directory_is_a_cluster(self) -> None:
        """Raise when the directory already holds files that are not a cluster's.

        Starting hands the directory to the server's user (``postgres`` when run as root);
        a directory that holds a project must never change owner because ``--dir`` named it.
        """
        if self.directory.exists() and not self.directory.is_dir():
            raise DatabaseError(
                f"{self.directory} is a file, not a directory; the cluster keeps its data, log "
                "and port in a directory of its own. Fix: --dir a new or empty directory, such "
                f"as --dir {self.directory.with_name(self.directory.name + '.pgkeel')}."
            )
        if not self.directory.is_dir():
            return
        foreign = sorted(
            entry.name for entry in self.directory.iterdir() if entry.name not in _CLUSTER_FILES
        )
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise DatabaseError(
                f"{self.directory} already holds files that are not a pgkeel cluster's "
                f"({shown}); the cluster keeps its data, log and port in a directory of its own. "
                f"Fix: choose a new or empty directory, such as --dir {self.directory / '.pgkeel'}."
            )

    def holds_a_cluster(self) -> bool:
        """Whether the directory holds a cluster: its data directory or its saved port."""
        return self.exists() or (self.directory / STATE_FILE).is_file()

    def remove(self) -> None:
        """Remove the cluster's own files, then the directory if nothing else is left in it.

        Only what a cluster is made of goes: ``data`` when it is PostgreSQL's (or empty), the
        saved port and the server's log. Anything else a mistaken ``--dir`` names stays.
        """
        data = self.directory / "data"
        if self.exists() or (data.is_dir() and not any(data.iterdir())):
            shutil.rmtree(data)
        for name in (STATE_FILE, LOG_FILE):
            with suppress(FileNotFoundError):
                (self.directory / name).unlink()
        with suppress(OSError):
            self.directory.rmdir()

    def check_version(self) -> None:
        """Raise when the data directory was made by another PostgreSQL major version."""
        with suppress(OSError, ValueError):
            major = int((self.directory / "data" / "PG_VERSION").read_text().strip())
            if major != self.binaries.major:
                raise DatabaseError(
                    f"The cluster in {self.directory} was created by PostgreSQL {major}, but the "
                    f"server found is PostgreSQL {self.binaries.major} ({self.binaries.origin}). "
                    f"Fix: set PGKEEL_PG_BINDIR to a PostgreSQL {major} bin directory, or remove "
                    f"{self.directory} to start afresh (its data is lost), or choose another "
                    "directory with --dir."
                )

    def ensure_initialized(self) -> Cluster:
        """Create the directory and run ``initdb`` once; later calls reuse the data."""
        check_reachable(self.user, self.directory)
        self.check_directory_is_a_cluster()
        self.check_ownership()
        self.check_version()
        self._make_directory()
        self.user.give(self.directory)
        cluster = self.cluster()
        if not self.exists():
            cluster.initialize()
        self._save_port(cluster.port)
        return cluster

    def _make_directory(self) -> None:
        """Create the cluster directory and its missing parents, or say why it cannot be.

        What it made goes again when the server user cannot enter it (a umask of 077): a
        refused start leaves nothing behind.
        """
        missing = [d for d in (self.directory, *self.directory.parents) if not d.exists()]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            check_reachable(self.user, self.directory)
        except OSError as exc:
            _remove_empty(missing)
            raise DatabaseError(
                f"cannot create {self.directory.name} here ({self.directory.parent}: "
                f"{exc.strerror or exc}); use --dir DIR to keep the cluster in a directory you "
                "can write to."
            ) from None
        except DatabaseError:
            _remove_empty(missing)
            raise

    def status(self) -> str | None:
        """The running server's URL, or None when it is not running."""
        if not self.exists():
            return None
        cluster = self.cluster()
        result = cluster.run_tool(
            self.binaries.tool("pg_ctl"), "status", "-D", str(cluster.data_dir)
        )
        return cluster.url().render_as_string() if result.returncode == 0 else None

    def start(self) -> Cluster:
        """Start the server (initializing on first use), wait for it, make the dev roles."""
        cluster = self.ensure_initialized()
        if self.status() is None:
            self._start_server(cluster)
        else:
            self._wait_for_recorded_server(cluster)
        ensure_dev_roles(cluster)
        return cluster

    def _wait_for_recorded_server(self, cluster: Cluster) -> None:
        """The server ``pg_ctl status`` reports: wait until it answers, or start it if it is gone.

        A server that was killed can still be reported running for a moment (``postmaster.pid``
        names a process not reaped yet), and one that is starting does not answer yet.
        """
        deadline = time.monotonic() + _RECORDED_SERVER_WAIT_S
        while time.monotonic() < deadline:
            with suppress(psycopg.OperationalError):
                psycopg.connect(cluster.conninfo(), connect_timeout=2).close()
                return
            if self.status() is None:
                self._start_server(cluster)
                return
            time.sleep(0.2)
        raise DatabaseError(
            f"PostgreSQL in {cluster.data_dir} is recorded as running (postmaster.pid) but does "
            f"not answer on 127.0.0.1:{cluster.port} after {_RECORDED_SERVER_WAIT_S} s.\n"
            f"{cluster.log_tail()}\nFix: `pgkeel db stop`, then `pgkeel db start`; if no "
            f"PostgreSQL process of {cluster.data_dir} is left, remove its postmaster.pid."
        )

    def _start_server(self, cluster: Cluster) -> None:
        """``pg_ctl start`` in the background, on the saved port or a new free one."""
        if not _port_frees(cluster.port):
            taken, cluster.port = cluster.port, stable_port(DEV_PORTS)
            self._save_port(cluster.port)
            sys.stderr.write(
                f"pgkeel: port {taken} is taken by another program: the server moves to port "
                f"{cluster.port} (saved for the next start). URLs exported before name the old "
                "port: export them again (pgkeel db url).\n"
            )
        options = f"-p {cluster.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        result = cluster.run_tool(
            self.binaries.tool("pg_ctl"),
            "start",
            "--wait",
            "-D",
            str(cluster.data_dir),
            "-l",
            str(cluster.log_file),
            "-o",
            options,
        )
        if result.returncode != 0:
            raise DatabaseError(
                f"PostgreSQL in {cluster.data_dir} did not start:\n{cluster.log_tail()}\n"
                f"Fix: read {cluster.log_file}; `pgkeel db stop` then `pgkeel db start` to retry."
            )

    def stop(self) -> bool:
        """Stop the server (fast shutdown); False when it was not running."""
        if self.status() is None:
            return False
        cluster = self.cluster()
        cluster.run_tool(
            self.binaries.tool("pg_ctl"),
            "stop",
            "--wait",
            "-m",
            "fast",
            "-D",
            str(cluster.data_dir),
        )
        return True


def _remove_empty(directories: list[Path]) -> None:
    """Remove ``directories`` (deepest first) that are still empty."""
    for directory in directories:
        with suppress(OSError):
            directory.rmdir()


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "unknown user"
