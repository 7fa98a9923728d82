"""Soft-delete reads: the client CPU of pgkeel's filters vs the filter written by hand, and vs
sqlalchemy-easy-softdelete.

Each library runs in its own worker process (``bench._reads_worker``) on the same database.
Each round takes the reads in a shuffled order and, for each, asks the workers back to back for
``COUNT`` statements of it, each in its own session, the workers' order alternating from round
to round; the ratio is the median of the per-round ratios of CPU per statement (this client's
CPU: what the filters cost, which a busy machine disturbs less than wall time). Measurements
of the same read taken back to back share the machine's state of the moment: on a shared
machine whose speed drifts by 10-20 % within seconds, that pairing is what keeps the ratio
steady.

The rounds are spread over ``GENERATIONS`` sets of fresh worker processes. A process keeps its
speed for its whole life: its hash seed and address layout decide how its dictionaries and
code fall in the caches, which moved one library's ratio by 0.05-0.15 from one process to the
next while its instruction count per statement (callgrind) stayed within 1 %; several processes
per library put that luck on both sides. The server runs on a CPU of its own and the workers
on the others (``split_cpus``), so that no worker is preempted by its own backend.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass

from bench._envs import (
    SQLALCHEMY20,
    current_python,
    load,
    paired_ratio,
    progress,
    python,
    split_cpus,
)
from pgkeel.database import provide_server
from pgkeel.testing.databases import create_database

TITLE = "Soft-delete reads: client CPU per statement, pgkeel vs the hand-written filter and peers"
GENERATIONS = 5
"""Sets of fresh worker processes (see the module's docstring)."""
ROUNDS = 5  # per generation: sized so that `make bench` as a whole stays under 10 minutes
COUNT = 40
LOADERS = ("pgkeel", "easy")
"""Libraries whose worker creates and fills tables (``hand`` and ``recipe`` read pgkeel's): once,
before any measurement, in a process of its own, so that no measured process carries the
load's heap."""
GOAL_RATIO = 1.10
BESIDE = "hand beside pgkeel"
"""The hand-written reads in a process that also imported pgkeel and defined its models."""


@dataclass
class _Worker:
    """One library's worker process."""

    process: subprocess.Popen[str]
    rows: dict[str, int]

    def measure(self, variant: str) -> dict[str, float]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{variant}\t{COUNT}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())  # type: ignore[no-any-return]


def _start(interpreter: str, library: str, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [interpreter, "-m", "bench._reads_worker", library, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _ready(
    stack: ExitStack, library: str, process: subprocess.Popen[str], cpus: set[int]
) -> _Worker:
    """Wait for a started worker to define its models and check its reads."""
    stack.callback(process.wait, 60)
    stack.callback(lambda: process.stdin.close() if process.stdin else None)
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        raise SystemExit(f"the {library} worker stopped before it was ready")
    os.sched_setaffinity(process.pid, cpus)  # once ready: the workers start in parallel
    return _Worker(process, json.loads(line)["ready"])


def _load_tables(interpreter: str, libraries: list[str], url: str) -> None:
    """Create and fill the tables of the loaders among ``libraries``, in short-lived processes."""
    for loader in LOADERS:
        if loader in libraries:
            command = [interpreter, "-m", "bench._reads_worker", loader, url, "--load"]
            subprocess.run(command, input="", capture_output=True, text=True, check=True)


def _measure_generation(
    workers: dict[str, _Worker],
    variants: list[str],
    shuffler: random.Random,
    cpu: dict[tuple[str, str], list[float]],
) -> None:
    """One warm-up round (mappers, statement caches, connections), then ``ROUNDS`` measured."""
    for worker in workers.values():
        for variant in variants:
            if variant in worker.rows:
                worker.measure(variant)
    for number in range(ROUNDS):
        reads = list(variants)
        shuffler.shuffle(reads)
        names = list(workers) if number % 2 == 0 else list(workers)[::-1]
        for variant in reads:
            for name in (n for n in names if variant in workers[n].rows):
                cpu.setdefault((name, variant), []).append(workers[name].measure(variant)["cpu"])


def _run_set(
    url: str, interpreter: str, libraries: list[str], variants: list[str], cpus: set[int]
) -> tuple[dict[tuple[str, str], list[float]], dict[str, dict[str, int]]]:
    """Measure ``libraries`` over ``GENERATIONS`` sets of fresh worker processes."""
    _load_tables(interpreter, libraries, url)
    cpu: dict[tuple[str, str], list[float]] = {}
    rows: dict[str, dict[str, int]] = {}
    shuffler = random.Random(0)  # noqa: S311  # an order of measurements, not a secret
    for generation in range(GENERATIONS):
        with ExitStack() as stack:
            order = libraries if generation % 2 == 0 else libraries[::-1]
            started = {name: _start(interpreter, name, url) for name in order}  # at once
            workers = {
                name: _ready(stack, name, process, cpus) for name, process in started.items()
            }
            _measure_generation(workers, variants, shuffler, cpu)
            rows = {name: workers[name].rows for name in libraries}
    return cpu, rows


LABELS = {
    "books": "one shelf's live books (10 rows)",
    "joined": "the shelf with its live books, `joinedload`",
    "tenant books": "tenant + soft delete: one shelf's live books, in `tenant_context`",
    "tenant joined": "tenant + soft delete: the shelf with its live books, `joinedload`",
    "books in one session": (
        f"one shelf's live books, {COUNT} statements in one session (the filter per statement, "
        "the transaction's costs spread)"
    ),
}


def _peer_rows(
    own: dict[tuple[str, str], list[float]], peer: dict[tuple[str, str], list[float]]
) -> list[str]:
    """pgkeel against sqlalchemy-easy-softdelete, each measured against the hand-written filter.

    They cannot share a process or a SQLAlchemy: the peer needs SQLAlchemy < 2.1, pgkeel >= 2.1.
    Each is timed against the same hand-written reads on its own SQLAlchemy, over the same
    tables, and the two ratios are compared.
    """
    rows = [
        (
            "| read | pgkeel vs hand-written (SQLAlchemy 2.1) | easy-softdelete vs hand-written "
            "(SQLAlchemy 2.0) | pgkeel vs easy-softdelete |"
        ),
        "|---|---|---|---|",
    ]
    for variant in ("books", "joined"):
        ours = paired_ratio(own["pgkeel", variant], own["hand", variant])
        theirs = paired_ratio(peer["easy", variant], peer["hand", variant])
        rows.append(f"| {LABELS[variant]} | {ours:.2f}x | {theirs:.2f}x | {ours / theirs:.2f}x |")
    return rows


RECIPE_VARIANTS = ("books", "joined", "books in one session")


def _process_rows(own: dict[tuple[str, str], list[float]]) -> list[str]:
    """What carrying pgkeel costs a process, apart from its hooks (``hand beside pgkeel``)."""
    rows = [
        (
            "| read | pgkeel vs hand-written | hand-written, in a process carrying pgkeel, vs "
            "hand-written | pgkeel vs that |"
        ),
        "|---|---|---|---|",
    ]
    for variant, label in LABELS.items():
        ours = paired_ratio(own["pgkeel", variant], own["hand", variant])
        beside = paired_ratio(own[BESIDE, variant], own["hand", variant])
        versus = paired_ratio(own["pgkeel", variant], own[BESIDE, variant])
        rows.append(f"| {label} | {ours:.2f}x | {beside:.2f}x | {versus:.2f}x |")
    return rows


def _recipe_rows(own: dict[tuple[str, str], list[float]]) -> list[str]:
    """pgkeel and SQLAlchemy's own filter recipe, each against the hand-written filter."""
    rows = [
        "| read | pgkeel vs hand-written | the recipe vs hand-written | pgkeel vs the recipe |",
        "|---|---|---|---|",
    ]
    for variant in RECIPE_VARIANTS:
        ours = paired_ratio(own["pgkeel", variant], own["hand", variant])
        recipe = paired_ratio(own["recipe", variant], own["hand", variant])
        mine_vs_recipe = paired_ratio(own["pgkeel", variant], own["recipe", variant])
        rows.append(f"| {LABELS[variant]} | {ours:.2f}x | {recipe:.2f}x | {mine_vs_recipe:.2f}x |")
    return rows


def run() -> str:
    """Measure both sets and return the Markdown section."""
    load_before = load()
    with provide_server({}) as server:
        progress("pgkeel vs the hand-written filter (SQLAlchemy of pgkeel's environment)")
        url = create_database(server.url, "bench_reads").render_as_string(hide_password=False)
        cpus, pinning = split_cpus(url)
        own, own_rows = _run_set(
            url, current_python(), ["pgkeel", "hand", "recipe", BESIDE], list(LABELS), cpus
        )
        peer: dict[tuple[str, str], list[float]] | None = None
        peer_rows: dict[str, dict[str, int]] = {}
        if (SQLALCHEMY20 / ".installed").exists():
            progress("pgkeel vs sqlalchemy-easy-softdelete (SQLAlchemy 2.0 environment)")
            peer, peer_rows = _run_set(
                url, python(SQLALCHEMY20), ["hand", "easy"], ["books", "joined"], cpus
            )
    rows = [
        "| read | pgkeel CPU/statement | vs hand-written filter | goal |",
        "|---|---|---|---|",
    ]
    for variant, label in LABELS.items():
        ratio = paired_ratio(own["pgkeel", variant], own["hand", variant])
        verdict = "met" if ratio <= GOAL_RATIO else "**not met**"
        median = statistics.median(own["pgkeel", variant]) * 1e6
        rows.append(
            f"| {label} | {median:.0f} µs | {ratio:.2f}x | <= {GOAL_RATIO:.2f}x: {verdict} |"
        )
    rows += ["", *_recipe_rows(own), "", *_process_rows(own)]
    if peer is not None:
        rows += ["", *_peer_rows(own, peer)]
    peers = (
        f"and, on SQLAlchemy 2.0, {peer_rows}"
        if peer is not None
        else "(sqlalchemy-easy-softdelete not measured: its environment, "
        "`make .venv-bench-sa20/.installed`, was not built)"
    )
    notes = (
        f"{GENERATIONS * ROUNDS} rounds of {COUNT} statements per library and read, in "
        f"{GENERATIONS} sets of fresh worker processes ({ROUNDS} rounds each, after a warm-up "
        "round: a process's hash seed and address layout set its speed for its whole life, "
        "so each library is measured in several), the libraries measured back to back on each "
        f"read, their order alternating; {pinning}. "
        "each statement opens and closes its own session (pgkeel's include the per-transaction "
        "tenant setting). Rows returned, per library (a comparison is void unless they agree): "
        f"{own_rows} {peers}. What sqlalchemy-easy-softdelete cannot "
        "express: it filters ORM SELECTs only — `session.delete()` and bulk `delete()` remove "
        "rows, no partial unique index keeps uniqueness among live rows, and raw SQL sees deleted "
        "rows (pgkeel: soft delete on every delete path, partial unique indexes); it has no "
        "tenancy, so it has no tenant rows. It requires SQLAlchemy < 2.1 and pgkeel >= 2.1, so it "
        "runs in an environment of its own (SQLAlchemy 2.0, without pgkeel), against the same "
        "hand-written reads over the same tables; the two ratios to hand-written are compared. "
        "The recipe is SQLAlchemy's own: a `do_orm_execute` listener adding "
        "`with_loader_criteria(..., deleted_at IS NULL)` to every ORM SELECT, on the "
        "hand-written models; it is the filter alone, without what pgkeel does per transaction "
        "(the tenant setting sent with `BEGIN`, empty without a tenant, so that a value left "
        "on a pooled connection never reaches it) and per statement (the tenant parameter, the "
        "refusals of unfiltered reads, the check that the tenant is still the one set). "
        "The last table runs the hand-written reads in a process that has also imported pgkeel "
        "and defined its models, pgkeel's session factory on an engine of its own: what "
        "carrying pgkeel's code costs a process apart from the hooks. "
        f"Load average (1 min) before and after: {load_before}, {load()}."
    )
    return notes + "\n\n" + "\n".join(rows)
