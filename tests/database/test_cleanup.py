"""Throwaway clusters leave nothing behind: checked in the process table and on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgkeel.testing.pgbouncer import find_pgbouncer, not_found_message

SLEEPY_TEST = """
import os, time
from pathlib import Path
import psycopg
from sqlalchemy.engine import make_url
from pgkeel.database import conninfo

def test_wait(request, postgres_url):
    with psycopg.connect(conninfo(make_url(postgres_url))) as c:
        data = c.execute("show data_directory").fetchone()[0]
    if os.environ.get("BOUNCER"):
        bouncer = request.getfixturevalue("pgbouncer_factory")(postgres_url)
        Path(os.environ["MARKER"] + ".bouncer").write_text(str(bouncer.directory))
    Path(os.environ["MARKER"]).write_text(data)
    time.sleep(float(os.environ.get("SLEEP", "0")))
"""


def postgres_processes(directory: Path) -> list[int]:
    """PIDs whose command line mentions ``directory``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if str(directory) in cmdline and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


def run_session(
    tmp_path: Path, sleep: float, *, bouncer: bool = False
) -> tuple[subprocess.Popen[bytes], Path]:
    (tmp_path / "test_sleepy.py").write_text(SLEEPY_TEST)
    marker = tmp_path / "data_directory.txt"
    env = {**os.environ, "MARKER": str(marker), "SLEEP": str(sleep), "BOUNCER": "1" * bouncer}
    env.pop("DATABASE_URL", None)
    with (tmp_path / "output.txt").open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return process, marker


def wait_for(marker: Path, process: subprocess.Popen[bytes]) -> Path:
    for _ in range(600):
        if marker.exists() and marker.read_text():
            return Path(marker.read_text()).parent
        if process.poll() is not None:
            break
        time.sleep(0.1)
    output = (marker.parent / "output.txt").read_text()
    pytest.fail(f"the inner session never reached its test:\n{output}")


def assert_nothing_left(cluster_directory: Path) -> None:
    for _ in range(50):
        if not postgres_processes(cluster_directory) and not cluster_directory.exists():
            return
        time.sleep(0.1)
    assert postgres_processes(cluster_directory) == []
    assert not cluster_directory.exists()


@pytest.fixture(autouse=True)
def _no_external_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_a_normal_session_leaves_nothing(tmp_path: Path) -> None:
    process, marker = run_session(tmp_path, sleep=0)
    cluster_directory = wait_for(marker, process)
    assert process.wait(timeout=120) == 0
    assert_nothing_left(cluster_directory)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_session_leaves_nothing(tmp_path: Path, signum: signal.Signals) -> None:
    process, marker = run_session(tmp_path, sleep=120)
    cluster_directory = wait_for(marker, process)
    assert postgres_processes(cluster_directory), "the cluster should be running mid-session"
    process.send_signal(signum)
    process.wait(timeout=60)
    assert_nothing_left(cluster_directory)


def test_a_killed_session_leaves_no_pgbouncer(tmp_path: Path) -> None:
    if find_pgbouncer() is None:
        pytest.skip(not_found_message())
    process, marker = run_session(tmp_path, sleep=120, bouncer=True)
    cluster_directory = wait_for(marker, process)
    bouncer_directory = Path((tmp_path / "data_directory.txt.bouncer").read_text())
    assert postgres_processes(bouncer_directory), "PgBouncer should be running mid-session"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert_nothing_left(bouncer_directory)
    assert_nothing_left(cluster_directory)
