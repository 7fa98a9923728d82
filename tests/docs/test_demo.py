"""`make demo`, the README's main command, runs to the end and leaves nothing behind."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgkeel.database.binaries import BINDIR_ENV

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.py"


def pgserver_bindir() -> Path | None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if bindir.is_dir() else None


def run_demo(**extra_env: str) -> str:
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused", **extra_env}
    result = subprocess.run(
        [sys.executable, "-W", "error", str(DEMO)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout


def test_the_demo_creates_its_tables_on_a_throwaway_server() -> None:
    output = run_demo()
    assert "- server: throwaway cluster from " in output
    assert "CREATE TABLE invoices (" in output
    assert "- tables in the database: ['customers', 'invoices']" in output
    assert output.rstrip().endswith("nothing is left behind")


def test_the_demo_runs_on_the_embedded_postgresql() -> None:
    bindir = pgserver_bindir()
    if bindir is None:
        pytest.skip("the pgserver wheel is not installed (it exists for Python <= 3.12)")
    output = run_demo(**{BINDIR_ENV: str(bindir)})
    assert f"- server: throwaway cluster from {BINDIR_ENV} ({bindir})" in output
    assert "- tables in the database: ['customers', 'invoices']" in output
