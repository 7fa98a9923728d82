"""Running the server as an unprivileged user: PostgreSQL refuses to start as root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def check_reachable(user: ServerUser, path: Path) -> None:
    """Raise when ``user`` cannot enter every directory above ``path`` (a 0700 home, say)."""
    if user.uid == os.geteuid():
        return
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & 0o001 and not _owned_by(parent, user):
            raise DatabaseError(
                f"PostgreSQL runs as the unprivileged user {user.name!r}, which cannot enter "
                f"{parent} (mode {oct(mode & 0o777)}), so it cannot reach {path}. Fix: "
                f"`chmod o+x {parent}`, or keep the cluster elsewhere (`pgkeel db start --dir`)."
            )


def _owned_by(path: Path, user: ServerUser) -> bool:
    stat = path.stat()
    return stat.st_uid == user.uid or (stat.st_gid == user.gid and bool(stat.st_mode & 0o010))
