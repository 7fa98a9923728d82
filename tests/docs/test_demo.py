"""`make demo`, the README's main command: the whole job end to end, and nothing left behind.

The demo runs as a user runs it (a subprocess of this checkout's Python), with its build
directory, its scratch directory (PGKEEL_TMPDIR) and TMPDIR in this test's temporary directory,
and a token in its environment: every process it starts (PostgreSQL, make install, pytest)
inherits the token, so the process table shows whether any of them is still running.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgkeel.database.binaries import BINDIR_ENV

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.py"
TOKEN_ENV = "PGKEEL_DEMO_TEST_TOKEN"  # noqa: S105  # a variable name, not a secret
STEPS = [
    "1. Start PostgreSQL",
    "2. Render a service from the template",
    "3. Install it into its own virtualenv, with pgkeel from this checkout",
    "4. Migrate an empty database",
    "5. Add a model",
    "6. Let the plugin write the migration",
    "7. Apply it",
    "8. Run the service's tests",
    "9. Serve it over HTTP, as the runtime role",
]


def pgserver_bindir() -> Path | None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if bindir.is_dir() else None


@dataclass(frozen=True)
class DemoRun:
    """Where one run of the demo puts things, and how to find what it started."""

    build_dir: Path
    scratch: Path
    token: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST_", "COV_"))
        }
        env.update(
            {
                # Set to show that the demo never uses it: the server is always its own.
                "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused",
                "PGKEEL_TMPDIR": str(self.scratch),
                "TMPDIR": str(self.scratch),
                TOKEN_ENV: self.token,
            }
        )
        env.update(extra)
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-W", "error", str(DEMO), "--build-dir", str(self.build_dir)]

    def run(self, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(),
            cwd=self.build_dir.parent.parent,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    def processes(self) -> list[str]:
        """Live processes that carry this run's token or name its scratch directory."""
        found = []
        marker = f"{TOKEN_ENV}={self.token}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or entry.name == str(os.getpid()):
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                status = (entry / "status").read_text()
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if "State:\tZ" in status:
                continue
            if marker in environ or str(self.scratch).encode() in cmdline:
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
        return found

    def assert_nothing_left(self) -> None:
        """No process, and nothing in the temporary directory but the server copy root may make.

        As root, a server installed under a 0700 directory (this checkout, cloned by
        ``mktemp -d``) runs from a copy kept in the temporary directory for the next run.
        """
        deadline = time.monotonic() + _ENDING_S
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)  # a command make had started as it was interrupted, still exiting
        assert self.processes() == []
        left = sorted(path.name for path in self.scratch.iterdir())
        assert [name for name in left if not name.startswith("pgkeel-server-")] == []


_ENDING_S = 5
"""How long a process the interrupted run had started may take to exit on its own."""


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoRun]:
    """A run of the demo: build directory in ``tmp_path``, scratch where PostgreSQL can enter."""
    scratch = Path(tempfile.mkdtemp(prefix="pgkeel-demo-test-"))
    scratch.chmod(
        0o755
    )  # tmp_path sits in a 0700 directory when root; the server runs as another user
    yield DemoRun(tmp_path / "build" / "demo", scratch, uuid.uuid4().hex)
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.slow
def test_the_demo_runs_the_main_job_on_the_embedded_postgresql(demo: DemoRun) -> None:
    """The pgserver wheel's PostgreSQL when it is installed: what a machine with none gets."""
    bindir = pgserver_bindir()
    result = demo.run(**({BINDIR_ENV: str(bindir)} if bindir else {}))
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert result.stderr == ""

    positions = [output.index(step) for step in STEPS]
    assert positions == sorted(positions)
    if bindir is not None:
        assert f"from {BINDIR_ENV} ({bindir})" in output
    for command in [
        f"$ cookiecutter --no-input {ROOT / 'template'} --output-dir build/demo",
        "$ make install",
        "$ alembic upgrade head",
        "$ alembic revision --autogenerate -m 'add invoices'",
        "$ pytest -q",
    ]:
        assert command in output
    assert "class Invoice(MultiTenantModel, SoftDeleteMixin):" in output
    assert "-> app/alembic/versions/0002_add_invoices.py:" in output
    migration = output[output.index("def upgrade() -> None:") :]
    for operation in [
        "op.create_index('idx_invoices_tenant_id_user_id'",
        "op.create_trigger(",
        "op.create_policy(",
        "postgresql_where=sa.text('deleted_at IS NULL')",
    ]:
        assert operation in migration
    assert "-> database at revision 0002: tables invoices, projects, tenants, users" in output
    assert re.search(r"^\s+\d+ passed in ", output, re.MULTILINE)
    summary = output[output.index("What the plugin wrote") :]
    for row in [
        (
            "foreign-key index     tenant_id, user_id -> users: "
            "idx_invoices_tenant_id_user_id (tenant_id, user_id)"
        ),
        "is_deleted trigger    trg_invoices_is_deleted runs pgkeel_set_is_deleted()",
        "updated_at trigger    trg_invoices_updated_at runs pgkeel_set_updated_at()",
        "row-level security    enabled and forced; policy tenant_isolation",
        (
            "partial unique index  uq_invoices_tenant_id_number (tenant_id, number) "
            "WHERE (deleted_at IS NULL)"
        ),
    ]:
        assert row in summary
    assert "nothing is left running" in summary

    service = demo.build_dir / "billing_service"
    assert (service / "app/alembic/versions/0002_add_invoices.py").is_file()
    assert (demo.build_dir / "demo.log").read_text().count("$ alembic upgrade head") == 2
    demo.assert_nothing_left()


def test_without_postgresql_the_demo_stops_at_once_with_one_paragraph(
    demo: DemoRun, tmp_path: Path
) -> None:
    empty = tmp_path / "no-postgres"
    empty.mkdir()
    result = demo.run(**{BINDIR_ENV: str(empty)})
    assert result.returncode == 1
    assert result.stderr.lstrip().startswith(
        "make demo failed at step 1 of 9 (Start PostgreSQL): "
        "No PostgreSQL server could be found or started."
    )
    assert f"{BINDIR_ENV}={empty}" in result.stderr
    assert "fix: point PGKEEL_PG_BINDIR at the server's bin directory" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "\n\n" not in result.stderr.strip()
    assert "2. Render" not in result.stdout
    demo.assert_nothing_left()


def test_a_build_directory_the_demo_did_not_make_is_left_alone(demo: DemoRun) -> None:
    demo.build_dir.mkdir(parents=True)
    (demo.build_dir / "notes.txt").write_text("mine")
    result = demo.run()
    assert result.returncode == 1
    assert f"{demo.build_dir} exists and was not made by `make demo`" in result.stderr
    assert "Fix: remove it, or pass another directory with --build-dir." in result.stderr
    assert (demo.build_dir / "notes.txt").read_text() == "mine"


def test_ctrl_c_stops_postgresql_and_the_running_command(demo: DemoRun, tmp_path: Path) -> None:
    with (tmp_path / "output.txt").open("w") as output:
        process = subprocess.Popen(
            demo.command(),
            cwd=tmp_path,
            env=demo.env(),
            stdout=output,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        wait_for_install(demo, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stderr.strip() == (
        "make demo interrupted during step 3 "
        "(Install it into its own virtualenv, with pgkeel from this checkout); "
        "PostgreSQL is stopped."
    )
    demo.assert_nothing_left()


def wait_for_install(demo: DemoRun, process: subprocess.Popen[str]) -> None:
    """Block until the demo's `make install` runs (PostgreSQL is up by then)."""
    for _ in range(1200):
        if any(command.startswith("make install") for command in demo.processes()):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=60)
    pytest.fail(f"the demo never reached `make install`: {stderr}")
