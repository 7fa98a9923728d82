"""Run the benchmarks and write each result into its section of docs/performance.md."""

from __future__ import annotations

import argparse
import compileall
import importlib
import pkgutil
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "performance.md"
HEADER = """# Performance

Every figure here is produced by `make bench` (`python -m bench [NAME ...]`), which rewrites the
section of each benchmark it runs. Speed is given as a ratio against a baseline measured in the
same run, on the same machine (2 cores, shared): absolute times are for context only.
"""


def discover() -> list[str]:
    """Names of the benchmark modules in this package."""
    package = Path(__file__).parent
    return sorted(
        m.name for m in pkgutil.iter_modules([str(package)]) if not m.name.startswith("_")
    )


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section of benchmark ``name`` in docs/performance.md."""
    text = REPORT.read_text() if REPORT.exists() else HEADER
    section = f"<!-- bench:{name} -->\n## {title}\n\n{body.strip()}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.DOTALL)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else f"{text}\n{section}\n"
    REPORT.write_text(text)


def compile_checkout() -> None:
    """Compile pgkeel's modules in this checkout to bytecode, as installing a wheel leaves them.

    The bench runs pgkeel from the checkout. Where ``PYTHONDONTWRITEBYTECODE`` is set (and in a
    fresh clone), no ``__pycache__`` would exist, and every process a benchmark starts (cold
    start, Alembic commands, test sessions, workers) would compile pgkeel's sources again, a
    cost that SQLAlchemy, Alembic and the peers, compiled by pip, do not pay: measured, it took
    a cold start from 1.08x to 1.25x plain SQLAlchemy.
    """
    for package in ("src/pgkeel", "alembic_extensions", "bench"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main(argv: list[str]) -> int:
    """Run the named benchmarks (default: all), print and record them."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {discover()})")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = args.names or discover()
    compile_checkout()
    for number, name in enumerate(names, 1):
        module = importlib.import_module(f"bench.{name}")
        print(f"[{number}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        body = module.run()
        elapsed = time.perf_counter() - started
        print(
            f"[{number}/{len(names)}] {name} done in {elapsed:.0f} s", file=sys.stderr, flush=True
        )
        body += (
            f"\n\nCommand: `make bench` or `.venv-bench/bin/python -m bench {name}` "
            f"({elapsed:.0f} s)."
        )
        print(f"## {module.TITLE}\n\n{body}\n")
        if not args.no_write:
            write_section(name, module.TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
