"""Instructions of each no-op ``alembic check`` run on the real schema, counted by valgrind.

``python -m bench._real_schema_instructions [check|autogenerate]`` (not in ``make bench``: about
4 minutes on 2 cores) lays out the real-schema benchmark's two projects (``bench.real_schema``:
Apache Airflow's models, pgkeel's plugin and plain Alembic), then runs each side in a fresh
process under callgrind, three runs in the process, as the benchmark's measuring process does.
Each process runs twice: as the command line runs it (pgkeel's modules load during the first
run), and with psycopg, PostgreSQL's dialect and the modules pgkeel's first run loads imported
before the first run. Between the runs the process calls ``os.getppid()``, at which callgrind
writes what it has counted so far (``--dump-before``): the instructions of each run, apart.

Why: the benchmark times CPU, and on a shared machine a run's time moves by more than what
separates the two sides. An instruction count does not: with the hash seed fixed and address
randomisation off, the later runs of one process count the same to within 0.5%. It tells what
each part costs: the first run with and without the imports before it gives the imports' cost;
the later runs give the comparison's own cost per run.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RUNS = 3
_FIRST_RUN_MODULES = ("alembic_extensions", "pgkeel")
_LISTED = "modules of a run: "


def _child(directory: Path, kind: str, imported_first: bool) -> None:  # noqa: FBT001
    """The measured process (in the real-schema environment): ``RUNS`` runs, marked apart."""
    from bench.real_schema import NoOpRuns  # noqa: PLC0415

    runs = NoOpRuns(directory)
    import airflow_models  # noqa: F401, PLC0415

    if imported_first:
        _import_first_run_modules(directory, kind)
    for _ in range(RUNS):
        gc.collect()
        os.getppid()  # callgrind writes what came before
        runs.run(kind)
        os.getppid()  # ... and the run
        runs.tidy()


def _import_first_run_modules(directory: Path, kind: str) -> None:
    """Import psycopg, the dialect and every pgkeel module a first run loads (found by a run)."""
    import importlib  # noqa: PLC0415

    import psycopg  # noqa: F401, PLC0415
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401, PLC0415

    for name in first_run_modules(directory, kind):
        importlib.import_module(name)


def first_run_modules(directory: Path, kind: str) -> list[str]:
    """The pgkeel modules a first run of ``kind`` loads, found by a run in a process of its own."""
    module = "bench._real_schema_instructions"
    listed = subprocess.run(
        [sys.executable, "-m", module, "--modules", str(directory), kind],
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = (line for line in listed.stdout.splitlines() if line.startswith(_LISTED))
    return line.removeprefix(_LISTED).split()  # Alembic prints its own lines around it


def _modules_of_a_run(directory: Path, kind: str) -> None:
    """Print the pgkeel modules that one run loads (the process has loaded none before it)."""
    from bench.real_schema import NoOpRuns  # noqa: PLC0415

    runs = NoOpRuns(directory)
    before = set(sys.modules)
    runs.run(kind)
    runs.tidy()
    loaded = set(sys.modules) - before
    names = sorted(name for name in loaded if name.startswith(_FIRST_RUN_MODULES))
    print(_LISTED + " ".join(names), flush=True)


def _count(directory: Path, url: str, kind: str, imported_first: bool) -> list[int]:  # noqa: FBT001
    """The instructions of each run of one process under callgrind."""
    from bench import real_schema  # noqa: PLC0415

    environ = real_schema.environ(url, directory) | {"PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            *("setarch", os.uname().machine, "-R"),
            *("valgrind", "--tool=callgrind", "--cache-sim=no", "--dump-before=os_getppid"),
            f"--callgrind-out-file={Path(scratch) / 'out'}",
            str(real_schema.python()),
            *("-m", "bench._real_schema_instructions", "--child", str(directory), kind),
            *(["first"] if imported_first else []),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=environ,
            cwd=real_schema.ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"callgrind failed:\n{done.stderr[-3000:]}")
        dumps = sorted(Path(scratch).glob("out.*"), key=lambda p: int(p.suffix[1:]))
        totals = [int(re.search(r"^totals: (\d+)", p.read_text(), re.M)[1]) for p in dumps]  # type: ignore[index]
    return totals[1::2][:RUNS]  # every other dump is a run; the ones between are set-up


def _report(kind: str, counts: dict[tuple[str, bool], list[int]]) -> str:
    """A Markdown table of the counts of ``kind``: each side's runs, and what pgkeel's part is."""

    def millions(value: float) -> str:
        return f"{value / 1e6:,.1f}M"

    plain, ours = counts[("plain", False)], counts[("pgkeel", False)]
    plain_first, ours_first = counts[("plain", True)], counts[("pgkeel", True)]
    later = (min(plain[1:]), min(ours[1:]))
    rows = [
        ("first run", plain[0], ours[0]),
        ("later runs (the smaller of two)", *later),
        ("first run, the modules imported before it", plain_first[0], ours_first[0]),
    ]
    command = "revision --autogenerate" if kind == "autogenerate" else "check"
    lines = [
        f"no-op `alembic {command}` | plain Alembic | pgkeel | ratio",
        "---|---|---|---",
        *(f"{label} | {millions(a)} | {millions(b)} | {b / a:.3f}x" for label, a, b in rows),
    ]
    imports = (ours[0] - ours_first[0]) - (plain[0] - plain_first[0])
    first_only = (ours_first[0] - later[1]) - (plain_first[0] - later[0])
    lines.append(
        f"\npgkeel's part: its modules' import {millions(imports)}, its work in each run "
        f"{millions(later[1] - later[0])}, work done on the first run only {millions(first_only)}"
    )
    return "\n".join(lines)


def main(arguments: list[str]) -> None:
    """Lay out the projects, count each side both ways, print the comparison."""
    if arguments[:1] == ["--child"]:
        _child(Path(arguments[1]), arguments[2], arguments[3:4] == ["first"])
        return
    if arguments[:1] == ["--modules"]:
        _modules_of_a_run(Path(arguments[1]), arguments[2])
        return
    if shutil.which("valgrind") is None or shutil.which("setarch") is None:
        raise SystemExit(
            "bench._real_schema_instructions needs valgrind and setarch. "
            "Fix: apt-get install valgrind (setarch is in util-linux)."
        )
    from bench import real_schema  # noqa: PLC0415

    kinds = arguments or ["check"]
    with real_schema.prepared_projects() as (dirs, urls, _shared):
        for kind in kinds:
            counts: dict[tuple[str, bool], list[int]] = {}
            # One process a core, the two sides at once: a side's processes share its project,
            # where plain Alembic's autogenerate writes (and the run then removes) a file.
            for first in (False, True):
                with ThreadPoolExecutor(max_workers=2) as pool:
                    futures = {
                        (side, first): pool.submit(_count, dirs[side], urls[side], kind, first)
                        for side in ("plain", "pgkeel")
                    }
                    counts |= {job: future.result() for job, future in futures.items()}
            print(_report(kind, counts), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
