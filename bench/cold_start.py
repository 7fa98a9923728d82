"""Cold start: a fresh Python process that imports the library and defines one model.

Every ``pgkeel`` and ``alembic`` command, every test session and every serverless cold start pays
this. Each variant is a new interpreter (``python -c``) defining the same table (a UUIDv7 id,
``created_at``/``updated_at`` and a ``varchar(255)``); rounds run the variants in a shuffled
order and the ratio is the median of the per-round ratios against plain SQLAlchemy.
"""

from __future__ import annotations

import random
import resource
import statistics
import subprocess
import time
from pathlib import Path

from bench._envs import current_python, has_peer, load, not_installed, paired_ratio

TITLE = "Cold start: import the library and define one model, in a fresh process"
ROUNDS = 4  # sized so that `make bench` as a whole stays under 10 minutes
GOAL_RATIO = 1.3
GOAL_HELP_SECONDS = 0.3

PLAIN = """
import uuid
from datetime import datetime
from sqlalchemy import DateTime, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid_utils.compat import uuid7
class Base(DeclarativeBase):
    pass
class Order(Base):
    __tablename__ = "orders"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    customer: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
"""

PGKEEL = """
from sqlalchemy.orm import Mapped
from pgkeel import BaseModel, Str255
class Order(BaseModel):
    customer: Mapped[Str255]
"""

ADVANCED_ALCHEMY = """
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from advanced_alchemy.base import UUIDv7AuditBase
class Order(UUIDv7AuditBase):
    __tablename__ = "orders"
    customer: Mapped[str] = mapped_column(String(255))
"""

ENGINE = '\nfrom sqlalchemy import create_engine\ncreate_engine("postgresql+psycopg://")\n'


def _variants() -> dict[str, list[str]]:
    python = current_python()
    variants = {
        "plain": [python, "-c", PLAIN],
        "pgkeel": [python, "-c", PGKEEL],
        "plain + engine": [python, "-c", PLAIN + ENGINE],
        "pgkeel + engine": [python, "-c", PGKEEL + ENGINE],
        "pgkeel --help": [str(Path(python).parent / "pgkeel"), "--help"],
        "interpreter": [python, "-c", "pass"],
    }
    if has_peer("advanced_alchemy"):
        variants["advanced-alchemy"] = [python, "-c", ADVANCED_ALCHEMY]
    return variants


def _run_once(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's CPU seconds (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def _measure(variants: dict[str, list[str]]) -> dict[str, list[tuple[float, float]]]:
    for command in variants.values():
        _run_once(command)  # warm the file cache and the bytecode caches
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    shuffler = random.Random(0)  # noqa: S311  # an order of measurements, not a secret
    for _ in range(ROUNDS):
        order = list(variants.items())
        shuffler.shuffle(order)
        for name, command in order:
            results[name].append(_run_once(command))
    return results


def run() -> str:
    """Measure every variant and return the Markdown section."""
    load_before = load()
    results = _measure(_variants())
    walls = {name: [wall for wall, _ in runs] for name, runs in results.items()}
    cpus = {name: [cpu for _, cpu in runs] for name, runs in results.items()}

    def row(label: str, name: str, baseline: str, goal: str = "") -> str:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        ratio = paired_ratio(walls[name], walls[baseline])
        cpu_ratio = paired_ratio(cpus[name], cpus[baseline])
        ratios = f"{ratio:.2f}x (CPU {cpu_ratio:.2f}x)"
        return f"| {label} | {wall:.3f} s | {cpu:.3f} s | {ratios} | {goal} |"

    ratio = paired_ratio(walls["pgkeel"], walls["plain"])
    cpu_ratio = paired_ratio(cpus["pgkeel"], cpus["plain"])
    met = "met" if ratio <= GOAL_RATIO and cpu_ratio <= GOAL_RATIO else "**not met**"
    help_wall, help_cpu = (
        statistics.median(walls["pgkeel --help"]),
        statistics.median(cpus["pgkeel --help"]),
    )
    help_met = ", ".join(
        f"{kind} {'met' if seconds <= GOAL_HELP_SECONDS else '**not met**'}"
        for kind, seconds in (("CPU", help_cpu), ("wall", help_wall))
    )
    rows = [
        "| process | wall (median) | CPU (median) | ratio vs plain | goal |",
        "|---|---|---|---|---|",
        row("pgkeel: `BaseModel` subclass", "pgkeel", "plain", f"<= {GOAL_RATIO}x: {met}"),
        row("baseline: plain SQLAlchemy, the same table by hand", "plain", "plain"),
    ]
    peer = "peer: advanced-alchemy `UUIDv7AuditBase` subclass"
    if "advanced-alchemy" in walls:
        rows.append(row(peer, "advanced-alchemy", "plain"))
    else:
        rows.append(f"| {peer} | {not_installed('advanced-alchemy')} |  |  |  |")
    rows += [
        row(
            "context: pgkeel + `create_engine('postgresql+psycopg://')`",
            "pgkeel + engine",
            "plain + engine",
        ),
        row(
            "context: plain + `create_engine(...)` (baseline of the row above)",
            "plain + engine",
            "plain + engine",
        ),
        row("context: the interpreter alone (`python -c pass`)", "interpreter", "plain"),
    ]
    help_rows = [
        "| process | wall (median) | CPU (median) | ratio vs `python -c pass` | goal |",
        "|---|---|---|---|---|",
        row(
            "`pgkeel --help`",
            "pgkeel --help",
            "interpreter",
            f"<= {GOAL_HELP_SECONDS} s: {help_met}",
        ),
        row("baseline: the interpreter alone (`python -c pass`)", "interpreter", "interpreter"),
    ]
    over = (
        f"`pgkeel --help` over the bare interpreter: "
        f"+{help_wall - statistics.median(walls['interpreter']):.3f} s wall, "
        f"+{help_cpu - statistics.median(cpus['interpreter']):.3f} s CPU. The CPU figure is what "
        "the command costs; on a busy machine the wall figure adds the wait for a core."
    )
    notes = (
        f"{ROUNDS} rounds after one warm-up run each; each round runs every variant once in a "
        "shuffled order, as a new process; ratio = median of the per-round ratios (wall clock, "
        "and the child's CPU time, which a busy machine disturbs less). The engine rows add "
        "`create_engine` (no connection): a service imports PostgreSQL's dialect and psycopg for "
        "its engine in any case, and pgkeel no longer loads them before then. "
        f"Load average (1 min) before and after: {load_before}, {load()}."
    )
    return notes + "\n\n" + "\n".join(rows) + "\n\n" + "\n".join(help_rows) + "\n\n" + over
