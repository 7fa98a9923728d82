"""Instructions per statement of the soft-delete reads, counted by valgrind (not in ``make bench``).

``python -m bench._instructions hand:books pgkeel:books pgkeel:tenant_books ...`` loads the
reads benchmark's tables into a throwaway server, then runs each ``LIBRARY:READ`` (``_`` for a
space in the read's name) in a fresh process under callgrind, twice: 20 and 120 statements after
30 unmeasured ones; the difference divided by 100 is what one statement costs, the process's
start, imports and set-up cancelled out. ``LIBRARY@PATH:READ`` imports pgkeel from ``PATH``
instead (``/path/to/other/checkout/src``), to compare two versions of the hooks.

Why: the reads benchmark times client CPU, and on a shared machine a process's speed depends on
its hash seed, its address layout and its neighbours by more than the hooks cost. An instruction
count does not: with the hash seed fixed and address randomisation off, the same code counts
the same to within 1-2 % (what remains moves with the server's timing: psycopg waits in a loop).
Garbage collection is off in the measured part, as it costs whoever crosses its threshold.
Requires valgrind (Debian: ``apt-get install valgrind``) and ``setarch``; takes about 90 s per
``LIBRARY:READ`` on 2 cores.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine

from bench import _reads_worker as worker

WARM_UP = 30
SHORT, LONG = 20, 120


def _child(library: str, read_name: str, url: str, count: int) -> None:
    """The measured process: set up, warm up, collect, then ``count`` statements, no collector."""
    engine = create_engine(url)
    loads_tables = False  # the parent loaded them
    read = worker.LIBRARIES[library](engine, loads_tables)[read_name]
    shared = read_name in worker.SHARED_SESSION
    for number in range(WARM_UP):
        read(1 if shared else number)
    gc.collect()
    gc.disable()
    if shared:
        read(count)
    else:
        for number in range(count):
            read(number)


def _count(spec: str, url: str, statements: int) -> int:
    """Instructions of one run of ``spec`` (``LIBRARY[@PATH]:READ``) with ``statements``."""
    library, read_name = spec.split(":", 1)
    library, _, source = library.partition("@")
    environ = dict(os.environ, PYTHONHASHSEED="0")
    if source:
        environ["PYTHONPATH"] = source
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            *("setarch", os.uname().machine, "-R"),
            *("valgrind", "--tool=callgrind", "--cache-sim=no"),
            f"--callgrind-out-file={Path(scratch) / 'out'}",
            sys.executable,
            *("-m", "bench._instructions", "--child", library, read_name, url, str(statements)),
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=environ, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed for {spec}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(arguments: list[str]) -> None:
    if arguments[:1] == ["--child"]:
        library, read_name, url, count = arguments[1:5]
        _child(library, read_name.replace("_", " "), url, int(count))
        return
    if shutil.which("valgrind") is None or shutil.which("setarch") is None:
        raise SystemExit(
            "bench._instructions needs valgrind and setarch. "
            "Fix: apt-get install valgrind (setarch is in util-linux)."
        )
    with worker.loaded_database("bench_instructions") as url:
        first: float | None = None
        for spec in arguments:
            per_statement = (_count(spec, url, LONG) - _count(spec, url, SHORT)) / (LONG - SHORT)
            first = first or per_statement
            print(
                f"{spec}: {per_statement / 1000:.1f}k instructions per statement, "
                f"{per_statement / first:.3f}x the first",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
