"""Child servers pgkeel starts (postgres, pgbouncer): ports, scratch directories, and cleanup.

Every throwaway resource registers a cleanup with ``cleanup_on_exit``; the cleanups run, newest
first, when the process exits normally or receives SIGTERM or SIGINT, after which the signal does
what it did before. Children also get a parent-death signal, so even SIGKILL of the parent stops
them; their directories are then removed by the next run (``remove_stale_scratch_dirs``).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from pgkeel.errors import DatabaseError

if TYPE_CHECKING:
    from collections.abc import Callable

SCRATCH_PREFIX = "pgkeel-"
OWNER_FILE = "owner.pid"
TMPDIR_ENV = "PGKEEL_TMPDIR"
RAM_DIR = Path("/dev/shm")  # noqa: S108  # tmpfs: a cluster there needs no disk I/O at all
RAM_MIN_FREE_BYTES = 1 << 30
_PR_SET_PDEATHSIG = 1

_CLEANUPS: list[Callable[[], None]] = []
_PREVIOUS_HANDLERS: dict[int, object] = {}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stable_port(candidates: range) -> int:
    """The first free port of ``candidates``, else any free port.

    Ports below the kernel's ephemeral range (32768 and up on Linux) are never handed out to
    other programs' connections, so a server that keeps one finds it free again after a restart.
    """
    return next((port for port in candidates if port_free(port)), None) or free_port()


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 right now.

    Like PostgreSQL, the probe sets SO_REUSEADDR: connections of a server that just stopped,
    left in TIME_WAIT, do not keep it from listening again on its port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def die_with_parent(signum: int = signal.SIGQUIT) -> Callable[[], None]:
    """A ``preexec_fn`` asking Linux to send ``signum`` to the child when its parent dies."""

    def arm() -> None:
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)

    return arm


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(process: subprocess.Popen[bytes], signum: int, timeout: float = 15) -> None:
    """Send ``signum``, wait up to ``timeout`` seconds, then kill; always reap the process."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _roomy(directory: Path) -> bool:
    try:
        stats = os.statvfs(directory)
    except OSError:
        return False
    free = stats.f_bavail * stats.f_frsize
    return os.access(directory, os.W_OK | os.X_OK) and free >= RAM_MIN_FREE_BYTES


def _checked_forced_root(forced: str) -> Path:
    """``PGKEEL_TMPDIR``'s directory; raises, naming the variable, unless it is a usable one."""
    root = Path(forced)
    if not root.is_dir():
        problem = "is not a directory" if root.exists() else "does not exist"
    elif not os.access(root, os.W_OK | os.X_OK):
        problem = "is a directory this user cannot write to"
    else:
        return root
    raise DatabaseError(
        f"{TMPDIR_ENV} is {forced!r}, which {problem}; pgkeel keeps its throwaway clusters and "
        f"PgBouncers there. Fix: create it (`mkdir -p {shlex.quote(forced)}`, and `chmod 755` "
        f"so the server user can enter it when running as root), set {TMPDIR_ENV} to another "
        "directory, or unset it to use /dev/shm or the system temporary directory."
    )


def scratch_root() -> Path:
    """Where throwaway directories go: ``PGKEEL_TMPDIR``, else ``/dev/shm`` if roomy, else temp.

    A cluster in RAM makes ``CREATE DATABASE`` about ten times faster than on a disk, even with
    ``fsync`` off; 1 GiB free is required so a small ``/dev/shm`` (Docker's is 64 MiB) is skipped.
    """
    forced = os.environ.get(TMPDIR_ENV)
    if forced:
        return _checked_forced_root(forced)
    return RAM_DIR if _roomy(RAM_DIR) else Path(tempfile.gettempdir())


def make_scratch_dir(kind: str) -> Path:
    """A new private directory for a throwaway resource, marked with this process's id."""
    directory = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{kind}-", dir=scratch_root()))
    (directory / OWNER_FILE).write_text(str(os.getpid()))
    return directory


def remove_stale_scratch_dirs() -> None:
    """Remove throwaway directories whose creator was killed (SIGKILL leaves no chance to clean)."""
    roots = {scratch_root(), RAM_DIR, Path(tempfile.gettempdir())}
    for root in roots:
        for marker in root.glob(f"{SCRATCH_PREFIX}*/{OWNER_FILE}"):
            with suppress(OSError, ValueError):
                if not pid_alive(int(marker.read_text())):
                    shutil.rmtree(marker.parent, ignore_errors=True)


def cleanup_on_exit(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` at exit or on SIGTERM/SIGINT unless ``forget`` is called first."""
    _CLEANUPS.append(cleanup)
    _install_handlers()


def forget(cleanup: Callable[[], None]) -> None:
    """Drop a cleanup registered with ``cleanup_on_exit`` (it ran, or it is no longer needed)."""
    with suppress(ValueError):
        _CLEANUPS.remove(cleanup)


def run_cleanups() -> None:
    """Run every registered cleanup, newest first."""
    while _CLEANUPS:
        cleanup = _CLEANUPS.pop()
        with suppress(Exception):  # one failing cleanup must not keep the others from running
            cleanup()


def _on_signal(signum: int, frame: object) -> None:
    run_cleanups()
    previous = _PREVIOUS_HANDLERS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signum in _PREVIOUS_HANDLERS:
            continue
        with suppress(ValueError):  # only the main thread may install handlers
            _PREVIOUS_HANDLERS[signum] = signal.signal(signum, _on_signal)


atexit.register(run_cleanups)
