"""Running the server as an unprivileged user: PostgreSQL refuses to start as root."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pgkeel.database.binaries import PostgresBinaries, read_major
from pgkeel.errors import DatabaseError

PREFERRED_USERS = ("postgres", "pgkeel")


@dataclass(frozen=True)
class ServerUser:
    """The operating-system account that owns the data directory and runs ``postgres``."""

    name: str
    uid: int
    gid: int

    def subprocess_options(self) -> dict[str, Any]:
        """Keyword arguments that make ``subprocess`` run a program as this user."""
        if self.uid == os.geteuid():
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, path: Path) -> None:
        """Make this user the owner of ``path`` (a directory pgkeel created)."""
        if self.uid != os.geteuid():
            os.chown(path, self.uid, self.gid)


def _from_passwd(entry: pwd.struct_passwd) -> ServerUser:
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def server_user() -> ServerUser:
    """This process's own user, or an unprivileged system user when running as root."""
    if os.geteuid() != 0:
        return _from_passwd(pwd.getpwuid(os.geteuid()))
    for name in PREFERRED_USERS:
        try:
            return _from_passwd(pwd.getpwnam(name))
        except KeyError:
            continue
    return _create_system_user(PREFERRED_USERS[-1])


def _create_system_user(name: str) -> ServerUser:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise DatabaseError(
            "PostgreSQL cannot run as root, and there is no `postgres` user and no `useradd` to "
            f"create one. Fix: create an unprivileged user named {name!r}, or run as a normal user."
        )
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DatabaseError(
            f"PostgreSQL cannot run as root, and creating the system user {name!r} failed: "
            f"{result.stderr.strip()}. Fix: create an unprivileged user named {name!r} by hand, "
            "or run as a normal user."
        )
    return _from_passwd(pwd.getpwnam(name))


def blocked_parent(user: ServerUser, path: Path) -> Path | None:
    """The first directory above ``path`` that ``user`` cannot enter (a 0700 home), if any.

    Directories not made yet are left out: pgkeel checks them again once it made them.
    """
    if user.uid == os.geteuid():
        return None
    for parent in reversed(path.resolve().parents):
        if not parent.exists():
            return None
        if not parent.stat().st_mode & 0o001 and not _owned_by(parent, user):
            return parent
    return None


def _cannot_enter(user: ServerUser, blocked: Path) -> str:
    """The start of the error about a directory the server user cannot enter."""
    mode = blocked.stat().st_mode
    return (
        f"PostgreSQL runs as the unprivileged user {user.name!r}, which cannot enter "
        f"{blocked} (mode {oct(mode & 0o777)})"
    )


def check_reachable(user: ServerUser, path: Path) -> None:
    """Raise when ``user`` cannot enter every directory above ``path`` (a 0700 home, say)."""
    parent = blocked_parent(user, path)
    if parent is not None:
        raise DatabaseError(
            f"{_cannot_enter(user, parent)}, so it cannot reach {path}. Fix: "
            f"`chmod o+x {parent}`, or keep the cluster elsewhere (`pgkeel db start --dir`)."
        )


def binaries_for(user: ServerUser, binaries: PostgresBinaries) -> PostgresBinaries:
    """``binaries``, or a copy of their install the server user can run.

    As root, the server runs as an unprivileged user, who cannot run a server installed under a
    0700 directory: the embedded wheel inside a virtual environment in root's home, or a checkout
    made by ``mktemp -d``. Its install (``bin/``, ``lib/``, ``share/``, relocatable) is then
    copied once into the temporary directory, root-owned and read-only to others, and reused.
    The copy keeps the install's place next to a wheel's vendored libraries (``pgserver.libs``,
    found through the programs' ``$ORIGIN``-relative run path).
    """
    blocked = blocked_parent(user, binaries.bindir)
    if blocked is None:
        return binaries
    base = binaries.bindir.parents[2]
    copy = _shared_copy(base, _install_parts(binaries.bindir))
    bindir = copy / binaries.bindir.relative_to(base)
    if blocked_parent(user, bindir) is not None or read_major(bindir) != binaries.major:
        raise DatabaseError(
            f"{_cannot_enter(user, blocked)}, so it cannot run the server in "
            f"{binaries.bindir}, and copying it to {copy} did not help. Fix: "
            f"`chmod o+x {blocked}`, or set PGKEEL_PG_BINDIR to a server installed elsewhere."
        )
    return replace(binaries, bindir=bindir, origin=f"{binaries.origin}, copied to {copy}")


def _install_parts(bindir: Path) -> list[Path]:
    """What the server in ``bindir`` needs: its install and a wheel's vendored libraries."""
    install = bindir.parent
    vendored = install.parent.with_name(f"{install.parent.name}.libs")
    return [install, vendored] if vendored.is_dir() else [install]


def _shared_copy(base: Path, parts: list[Path]) -> Path:
    """A root-owned copy of ``parts`` (at their places under ``base``), made once per version."""
    postgres = parts[0] / "bin" / "postgres"
    marker = f"{postgres.resolve()}:{postgres.stat().st_mtime_ns}"
    digest = hashlib.sha256(marker.encode()).hexdigest()[:16]
    copy = Path(tempfile.gettempdir()) / f"pgkeel-server-{digest}"
    if copy.is_dir() and _trusted(copy):
        return copy
    staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}-", dir=copy.parent))
    try:
        for part in parts:
            shutil.copytree(part, staging / part.relative_to(base), symlinks=True)
        for directory in (staging, *staging.rglob("*")):
            if directory.is_dir() and not directory.is_symlink():
                directory.chmod(0o755)
        if copy.exists():
            shutil.rmtree(copy)
        staging.rename(copy)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (copy.is_dir() and _trusted(copy)):
            raise
    return copy


def _trusted(directory: Path) -> bool:
    """Whether ``directory`` is this process's own and nobody else can write to it."""
    info = directory.lstat()
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _owned_by(path: Path, user: ServerUser) -> bool:
    info = path.stat()
    return info.st_uid == user.uid or (info.st_gid == user.gid and bool(info.st_mode & 0o010))
