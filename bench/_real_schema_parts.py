"""Where the CPU time of a no-op run on the real schema goes, part by part, timed.

``python -m bench._real_schema_parts [check|autogenerate]`` (not in ``make bench``: about 2
minutes) lays out the real-schema benchmark's two projects (``bench.real_schema``) and runs
``PAIRS`` pairs of measuring processes, one per side, as the benchmark does. Each process times
every autogenerate comparator (Alembic's own and pgkeel's, as registered with Alembic's plugin
registry) and the stages around them in CPU time of its thread, for its first run and
``LATER`` later runs. A third kind of process imports the pgkeel modules a first run loads
(psycopg, PostgreSQL's dialect, Alembic and the models imported before), one name at a time in
alphabetical order, and times each import: a module's time includes the modules it imports that
were not loaded yet, and the total is what the first run pays for them.

Why: ``bench._real_schema_instructions`` counts instructions, which do not move with the
machine's load, but an instruction of a module's import (code read from disk, objects made for
the first time) or of code run for the first time does not cost what one of a warm loop costs.
This tells which part of a run the timed rows' difference is spent in. A comparator's time
includes the comparators it dispatches to (a table's include its columns').
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAIRS = 6
LATER = 4
_STAGES = (
    ("alembic.script.base", "ScriptDirectory", "run_env", "env.py, whole"),
    ("alembic.runtime.environment", "EnvironmentContext", "run_migrations", "run_migrations"),
    ("sqlalchemy.engine.base", "Engine", "connect", "connect"),
)


def _timed(function: Callable[..., Any], label: str, spent: Counter[str]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401  # any comparator's signature
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started

    return timed


def _wrap_comparators(spent: Counter[str]) -> None:
    """Time every comparator Alembic's plugin registry holds (reads Alembic's registry)."""
    import importlib  # noqa: PLC0415

    from alembic.runtime import plugins  # noqa: PLC0415

    for plugin in plugins._all_plugins.values():  # a measurement, not an API
        registry = plugin.autogenerate_comparators._registry
        for (target, _qualifier, _priority), entries in registry.items():
            entries[:] = [
                (_timed(fn, f"{target}: {fn.__module__}.{fn.__name__}", spent), subgroup)
                for fn, subgroup in entries
            ]
    for module, owner, name, label in _STAGES:
        cls = getattr(importlib.import_module(module), owner)
        setattr(cls, name, _timed(getattr(cls, name), label, spent))


def _child(directory: Path, kind: str) -> None:
    """A measuring process: the first run and ``LATER`` later ones, each part's CPU time."""
    import gc  # noqa: PLC0415

    from bench.real_schema import NoOpRuns  # noqa: PLC0415

    runs = NoOpRuns(directory)
    import airflow_models  # noqa: F401, PLC0415

    spent: Counter[str] = Counter()
    _wrap_comparators(spent)
    measured = []
    for _ in range(1 + LATER):
        gc.collect()
        spent.clear()
        started = time.process_time()
        runs.run(kind)
        measured.append({"run": time.process_time() - started, **spent})
        runs.tidy()
    print(json.dumps(measured))


def _imports(directory: Path, kind: str) -> None:
    """Time the import of each pgkeel module a first run loads (with what it loads first)."""
    import importlib  # noqa: PLC0415

    import alembic.autogenerate  # noqa: PLC0415
    import alembic.command  # noqa: F401, PLC0415
    import psycopg  # noqa: F401, PLC0415
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401, PLC0415

    from bench._real_schema_instructions import first_run_modules  # noqa: PLC0415
    from bench.real_schema import NoOpRuns  # noqa: PLC0415

    NoOpRuns(directory)
    import airflow_models  # noqa: F401, PLC0415

    spent: dict[str, float] = {}
    for name in first_run_modules(directory, kind):
        if name in sys.modules:
            continue  # loaded by one imported before it
        started = time.process_time()
        importlib.import_module(name)
        spent[name] = time.process_time() - started
    print(json.dumps(spent))


def _run_child(mode: str, directory: Path, url: str, kind: str) -> Any:  # noqa: ANN401  # JSON
    from bench import real_schema  # noqa: PLC0415

    done = subprocess.run(
        [str(real_schema.python()), "-m", "bench._real_schema_parts", mode, str(directory), kind],
        capture_output=True,
        text=True,
        env=real_schema.environ(url, directory),
        cwd=real_schema.ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_ms(processes: list[list[dict[str, float]]], part: str, runs: slice) -> float:
    """Median over processes of (median over ``runs`` of the part's CPU time), in ms."""
    per_process = [statistics.median(run.get(part, 0.0) for run in p[runs]) for p in processes]
    return statistics.median(per_process) * 1000


def _report(kind: str, sides: dict[str, list[list[dict[str, float]]]], imports: Any) -> str:  # noqa: ANN401
    parts = sorted({part for p in sides["pgkeel"] + sides["plain"] for run in p for part in run})
    lines = [
        (
            f"no-op `{kind}`, CPU ms (median of {PAIRS} processes a side) | plain first | "
            "pgkeel first | plain later | pgkeel later"
        ),
        "---|---|---|---|---",
    ]
    for part in ["run", *(part for part in parts if part != "run")]:
        cells = [
            _median_ms(sides[side], part, runs)
            for runs in (slice(0, 1), slice(1, None))
            for side in ("plain", "pgkeel")
        ]
        if max(cells) >= 0.05:  # a part that takes no measurable time
            lines.append(f"{part} | " + " | ".join(f"{cell:.2f}" for cell in cells))
    modules: dict[str, float] = imports
    lines.append(
        f"\nThe pgkeel modules a first run loads, imported by name in alphabetical order (each "
        f"with what it loads first): {sum(modules.values()) * 1000:.2f} ms of CPU; the largest:"
    )
    for name, value in sorted(modules.items(), key=lambda item: -item[1])[:8]:
        lines.append(f"- {name}: {value * 1000:.2f} ms")
    return "\n".join(lines)


def main(arguments: list[str]) -> None:
    """Lay out the projects, measure each side's parts, print the comparison."""
    if arguments[:1] == ["--child"]:
        _child(Path(arguments[1]), arguments[2])
        return
    if arguments[:1] == ["--imports"]:
        _imports(Path(arguments[1]), arguments[2])
        return
    from bench import real_schema  # noqa: PLC0415

    kind = (arguments or ["check"])[0]
    with real_schema.prepared_projects() as (dirs, urls, _shared):
        sides: dict[str, list[list[dict[str, float]]]] = {"pgkeel": [], "plain": []}
        for number in range(PAIRS):
            for side in ("plain", "pgkeel") if number % 2 else ("pgkeel", "plain"):
                sides[side].append(_run_child("--child", dirs[side], urls[side], kind))
        imports = _run_child("--imports", dirs["pgkeel"], urls["pgkeel"], kind)
    print(_report(kind, sides, imports), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
