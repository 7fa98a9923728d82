"""Finding PostgreSQL server binaries: this machine's installs first, then the pgserver wheel."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BINDIR_ENV = "PGKEEL_PG_BINDIR"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


@dataclass(frozen=True)
class Attempt:
    """One source of PostgreSQL that was tried, why it could not serve, and how to make it serve."""

    source: str
    problem: str
    fix: str

    def describe(self) -> str:
        """One bullet of an error message."""
        return f"- {self.source}: {self.problem}\n  fix: {self.fix}"


@dataclass(frozen=True)
class PostgresBinaries:
    """The directory of one PostgreSQL major version's ``initdb``, ``postgres`` and ``pg_ctl``."""

    bindir: Path
    major: int
    origin: str

    def tool(self, name: str) -> str:
        """Absolute path of one of the server programs."""
        return str(self.bindir / name)


def read_major(bindir: Path) -> int | None:
    """The major version of the server in ``bindir``, or None when it is not a usable server."""
    postgres = bindir / "postgres"
    if not (os.access(postgres, os.X_OK) and os.access(bindir / "initdb", os.X_OK)):
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.strip()) if out.strip() else None


def _path_bindir() -> Path | None:
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def local_candidates() -> list[tuple[Path, str]]:
    """Directories that may hold a server on this machine, with where each was found."""
    found: list[tuple[Path, str]] = []
    path_dir = _path_bindir()
    if path_dir:
        found.append((path_dir, "PATH"))
    config_dir = _pg_config_bindir()
    if config_dir:
        found.append((config_dir, "pg_config --bindir"))
    found.extend((d, "/usr/lib/postgresql") for d in Path("/usr/lib/postgresql").glob("*/bin"))
    return found


def find_local(attempts: list[Attempt], *, prefer: int | None = None) -> PostgresBinaries | None:
    """The server installed here of major ``prefer`` if there is one, else the newest, or None.

    When there is none, the reason is added to ``attempts``.
    """
    forced = os.environ.get(BINDIR_ENV)
    if forced:
        return _forced(Path(forced), attempts)
    usable: dict[Path, PostgresBinaries] = {}
    for bindir, origin in local_candidates():
        real = bindir.resolve()
        major = read_major(real)
        if major is not None and real not in usable:
            usable[real] = PostgresBinaries(real, major, f"{origin} ({real})")
    if usable:
        return max(usable.values(), key=lambda found: (found.major == prefer, found.major))
    attempts.append(
        Attempt(
            "PostgreSQL binaries on this machine",
            "no initdb/postgres on PATH, from `pg_config --bindir` or in /usr/lib/postgresql/*/bin",
            "install the server (Debian/Ubuntu: `apt-get install postgresql`; macOS: "
            "`brew install postgresql@16`) or set PGKEEL_PG_BINDIR to its bin directory",
        )
    )
    return None


def _forced(bindir: Path, attempts: list[Attempt]) -> PostgresBinaries | None:
    major = read_major(bindir)
    if major is not None:
        return PostgresBinaries(bindir, major, f"{BINDIR_ENV} ({bindir})")
    attempts.append(
        Attempt(
            f"{BINDIR_ENV}={bindir}",
            "this directory holds no runnable `postgres` and `initdb`",
            f"point {BINDIR_ENV} at the server's bin directory (`pg_config --bindir` prints it)",
        )
    )
    return None


def find_pgserver(attempts: list[Attempt]) -> PostgresBinaries | None:
    """The server bundled in the ``pgserver`` wheel (``pgkeel[embedded]``), if it is installed."""
    spec = importlib.util.find_spec("pgserver")
    locations = list(spec.submodule_search_locations or []) if spec and spec.origin else []
    if not locations:
        attempts.append(
            Attempt(
                "the pgserver wheel",
                "the `pgserver` package is not installed",
                "`pip install 'pgkeel[embedded]'` (wheels exist for Python <= 3.12)",
            )
        )
        return None
    bindir = Path(locations[0]) / "pginstall" / "bin"
    major = read_major(bindir)
    if major is None:
        attempts.append(
            Attempt(
                "the pgserver wheel",
                f"{bindir} holds no runnable server",
                "reinstall it: `pip install --force-reinstall pgserver`",
            )
        )
        return None
    return PostgresBinaries(bindir, major, f"pgserver wheel ({bindir})")


def find_binaries(attempts: list[Attempt], *, prefer: int | None = None) -> PostgresBinaries | None:
    """Server binaries from this machine (major ``prefer`` first), else the pgserver wheel's.

    A ``PGKEEL_PG_BINDIR`` that holds no server is an error, never a reason to fall back.
    """
    if os.environ.get(BINDIR_ENV):
        return find_local(attempts)
    return find_local(attempts, prefer=prefer) or find_pgserver(attempts)
