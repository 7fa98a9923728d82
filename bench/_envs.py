"""The bench environments: pgkeel with its peers, built by ``make bench``, never by ``make test``.

``.venv-bench`` holds pgkeel (editable, dev extras) and the peers that run on pgkeel's SQLAlchemy
(bench/requirements-peers.txt); ``.venv-bench-sa20`` holds sqlalchemy-easy-softdelete without
pgkeel: the peer requires SQLAlchemy < 2.1, pgkeel >= 2.1 (bench/requirements-sqlalchemy20.txt).
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / ".venv-bench"
SQLALCHEMY20 = ROOT / ".venv-bench-sa20"


def python(env: Path) -> str:
    """The interpreter of a bench environment; a clear error when it was not built."""
    interpreter = env / "bin" / "python"
    if not interpreter.exists():
        raise SystemExit(
            f"The bench environment {env.name} does not exist: the peers are measured in "
            "environments of their own. Fix: run `make bench` (it builds them), or "
            f"`make {env.name}/.installed` and then `{env.name}/bin/python -m bench NAME`."
        )
    return str(interpreter)


def current_python() -> str:
    """This interpreter: the bench runs in ``.venv-bench`` under ``make bench``."""
    return sys.executable


def load() -> str:
    """The 1-minute load average, for the record of a shared machine."""
    return f"{os.getloadavg()[0]:.1f}"


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median of the ratios of measurements taken back to back."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def progress(message: str) -> None:
    """One line on stderr, so that a long benchmark shows it is alive."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def has_peer(module: str) -> bool:
    """Whether a peer library is importable here (it is in ``.venv-bench``)."""
    return importlib.util.find_spec(module) is not None


def not_installed(distribution: str) -> str:
    """What a peer's row says when this environment lacks the peer."""
    return (
        f"not measured: {distribution} is not installed in this environment; "
        f"`{PEERS.name}/bin/python -m bench NAME` (built by `make bench`) has it"
    )


def split_cpus(server_url: str) -> tuple[set[int], str]:
    """Keep a local server's processes on one CPU and return the others, for the clients.

    The clients' CPU time is what a client-side benchmark compares; when a client and its
    server backend share a core, the backend's every wake-up may preempt the client and empty
    its caches, a cost that lands on whichever process the scheduler happened to place there
    (measured: 0.4 preemptions per statement for one worker, 0.02 for another, in the same
    run). With the postmaster on a CPU of its own (its backends inherit it) and the clients on
    the others, neither preempts the other. Returns all CPUs and why when it cannot: one CPU,
    or a server whose processes this user may not move.
    """
    from sqlalchemy import create_engine, text  # noqa: PLC0415  # bench helpers load lazily

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), "not pinned (one CPU)"
    engine = create_engine(server_url)
    try:
        with engine.connect() as connection:
            data = connection.execute(text("SHOW data_directory")).scalar_one()
    finally:
        engine.dispose()
    try:
        postmaster = int((Path(data) / "postmaster.pid").read_text().split()[0])
        os.sched_setaffinity(postmaster, {cpus[-1]})
    except (OSError, ValueError, IndexError) as error:
        return set(cpus), f"not pinned ({error})"
    clients = set(cpus[:-1])
    return clients, f"server on CPU {cpus[-1]}, clients on CPU {','.join(map(str, clients))}"
