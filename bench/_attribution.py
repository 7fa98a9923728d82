"""Where pgkeel's client CPU per read goes: its hooks with parts taken out (not in ``make bench``).

``python -m bench._attribution [READ ...]`` (default: ``books joined``; ``_`` for a space) loads
the reads benchmark's tables into a throwaway server, puts the server on a CPU of its own, and
for each *variant* starts ``PROCESSES`` fresh processes on the other CPUs. Each process defines
pgkeel's and the hand-written models, then times ``COUNT`` statements of each read through
pgkeel and through the hand-written filter, alternately, ``ROUNDS`` times; the ratio of each
pair is taken, their median per process, and the median over the processes is printed.

Both sides share one process: its hash seed, address layout and warm caches are the same for
both, so what differs between the two is the code each runs (the reads benchmark, which gives
each library processes of its own, has to average that luck out over several processes).

The variants take parts of pgkeel's hooks out **for this measurement only**; each one turns off
a guarantee, which is why they exist nowhere but here:

- ``pgkeel``: the hooks as shipped;
- ``BEGIN alone``: the query sent at a transaction's start is ``BEGIN`` without the tenant
  setting (the same path, one statement instead of two);
- ``no tenant setting``: neither the setting at ``BEGIN`` nor the per-statement check that it
  is still the context's (psycopg sends its own ``BEGIN``);
- ``recipe filter``: the ORM hook adds SQLAlchemy's recipe option (``deleted_at IS NULL``)
  and nothing else (no tenant option or parameter, no refusals, no answers kept per structure);
- ``recipe filter, no tenant setting``: both of the last two.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine

from bench import _reads_worker as worker
from bench._envs import split_cpus

PROCESSES = 4
ROUNDS = 10
COUNT = 40
WARM_UP = 40


def _begin_alone() -> None:
    from pgkeel.session import _begin  # noqa: PLC0415

    _begin._command = lambda _driver, _value: b"BEGIN"  # type: ignore[assignment]


def _no_tenant_setting() -> None:
    from pgkeel.session import _execute_hook, _installation  # noqa: PLC0415

    _installation.begin_tenant = lambda _connection: None  # type: ignore[assignment]
    _execute_hook.sync_tenant = lambda _connection, _statement: False  # type: ignore[assignment]


def _recipe_filter() -> None:
    from pgkeel.session import _reads  # noqa: PLC0415

    def recipe(state: Any, _scope: object, *, column_load: bool) -> None:  # noqa: ANN401, ARG001
        state.statement = state.statement.options(_reads._LIVE_ONLY)

    _reads._filter_select = recipe  # type: ignore[assignment]


VARIANTS: dict[str, tuple[Callable[[], None], ...]] = {
    "pgkeel": (),
    "BEGIN alone": (_begin_alone,),
    "no tenant setting": (_no_tenant_setting,),
    "recipe filter": (_recipe_filter,),
    "recipe filter, no tenant setting": (_recipe_filter, _no_tenant_setting),
}


def _child(variant: str, url: str, reads: list[str]) -> None:
    """One process: both libraries' reads, alternately; prints the per-round ratios as JSON."""
    for take_out in VARIANTS[variant]:
        take_out()
    loads_tables = False  # the parent loaded them
    libraries = {
        name: worker.LIBRARIES[name](create_engine(url), loads_tables)
        for name in ("pgkeel", "hand")
    }
    for library in libraries.values():
        for read in reads:
            for number in range(WARM_UP):
                library[read](number)
    ratios: dict[str, list[float]] = {read: [] for read in reads}
    for round_number in range(ROUNDS):
        for read in reads:
            cpu: dict[str, float] = {}
            order = ("pgkeel", "hand") if round_number % 2 else ("hand", "pgkeel")
            for name in order:
                started = time.process_time()
                for number in range(COUNT):
                    libraries[name][read](number)
                cpu[name] = time.process_time() - started
            ratios[read].append(cpu["pgkeel"] / cpu["hand"])
    print(json.dumps(ratios), flush=True)


def main(arguments: list[str]) -> None:
    if arguments[:1] == ["--child"]:
        _child(arguments[1], arguments[2], arguments[3:])
        return
    reads = [read.replace("_", " ") for read in arguments] or ["books", "joined"]
    with worker.loaded_database("bench_attribution") as url:
        clients, pinning = split_cpus(url)
        print(
            f"{pinning}; {PROCESSES} processes per variant, {ROUNDS} rounds of {COUNT} statements"
        )
        for variant in VARIANTS:
            per_process: dict[str, list[float]] = {read: [] for read in reads}
            for _ in range(PROCESSES):
                done = subprocess.run(
                    [sys.executable, "-m", "bench._attribution", "--child", variant, url, *reads],
                    capture_output=True,
                    text=True,
                    check=True,
                    preexec_fn=lambda: os.sched_setaffinity(0, clients),
                )
                ratios = json.loads(done.stdout.strip().splitlines()[-1])
                for read in reads:
                    per_process[read].append(statistics.median(ratios[read]))
            cells = ", ".join(
                f"{read} {statistics.median(values):.3f}x" for read, values in per_process.items()
            )
            print(f"{variant}: pgkeel vs hand-written, one process: {cells}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
