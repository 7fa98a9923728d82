"""``pgkeel db start|stop|status|url`` on a real persistent development cluster.

Most calls run ``pgkeel.cli.main`` in this process (the same code, without a Python start-up
each time); the console script itself is run where its exit status and output stream matter.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from pgkeel.cli import find_cluster_dir, main
from pgkeel.database import conninfo

PGKEEL = str(Path(sys.executable).with_name("pgkeel"))


def console_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PGKEEL, *args], capture_output=True, text=True, check=False)


def pgkeel(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``pgkeel ARGS`` in this process; the result looks like a finished subprocess."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors and --help
            code = int(exit_.code or 0)
    return subprocess.CompletedProcess(["pgkeel", *args], code, out.getvalue(), err.getvalue())


def test_lifecycle_keeps_data_across_restarts(open_dir: Path) -> None:
    directory = str(open_dir / ".pgkeel")
    assert pgkeel("db", "status", "--dir", directory).returncode == 3
    started = pgkeel("db", "start", "--dir", directory)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("postgresql+psycopg://app_user@127.0.0.1:")
    assert url.endswith("/app")
    try:
        assert pgkeel("db", "url", "--dir", directory).stdout.strip() == url
        status = pgkeel("db", "status", "--dir", directory)
        assert (status.returncode, status.stdout.strip()) == (0, f"running: {url}")
        owner = pgkeel("db", "url", "--owner", "--dir", directory).stdout.strip()
        with psycopg.connect(conninfo(make_url(owner)), autocommit=True) as connection:
            connection.execute("create table kept (id int)")
        assert pgkeel("db", "start", "--dir", directory).stdout.strip() == url
        assert pgkeel("db", "stop", "--dir", directory).stdout.strip() == "stopped"
        stopped_url = pgkeel("db", "url", "--dir", directory)
        assert stopped_url.returncode == 3
        assert f"not running; run `pgkeel db start --dir {directory}` first" in stopped_url.stderr
        assert pgkeel("db", "start", "--dir", directory).stdout.strip() == url
        with psycopg.connect(conninfo(make_url(url))) as connection:
            assert connection.execute("select to_regclass('kept') is not null").fetchone() == (
                True,
            )
    finally:
        pgkeel("db", "stop", "--dir", directory)
    assert pgkeel("db", "stop", "--dir", directory).stdout.strip() == "not running"


def test_a_saved_port_taken_meanwhile_is_left_with_a_note(open_dir: Path) -> None:
    """Another program on the saved port: the server moves, and says so (old URLs go stale)."""
    directory = str(open_dir / ".pgkeel")
    first = pgkeel("db", "start", "--dir", directory)
    assert first.returncode == 0, first.stderr
    pgkeel("db", "stop", "--dir", directory)
    port = make_url(first.stdout.strip()).port
    assert port is not None
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            moved = pgkeel("db", "start", "--dir", directory)
        finally:
            pgkeel("db", "stop", "--dir", directory)
    assert moved.returncode == 0, moved.stderr
    new_port = make_url(moved.stdout.strip()).port
    assert new_port != port
    assert f"pgkeel: port {port} is taken by another program: the server moves to port " in (
        moved.stderr
    )
    assert "export them again (pgkeel db url)" in moved.stderr


def test_start_after_the_server_was_killed_starts_it_again(open_dir: Path) -> None:
    """``kill -9`` of the postmaster: ``postmaster.pid`` stays, the process may await reaping."""
    directory = open_dir / "a project" / ".pgkeel"
    directory.parent.mkdir(mode=0o755)
    hint = pgkeel("db", "status", "--dir", str(directory)).stdout
    assert f"`pgkeel db start --dir '{directory}'`" in hint  # a path with a space, quoted
    url = pgkeel("db", "start", "--dir", str(directory)).stdout.strip()
    try:
        pid = int((directory / "data" / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        again = pgkeel("db", "start", "--dir", str(directory))
        assert (again.returncode, again.stdout.strip()) == (0, url), again.stderr
        with psycopg.connect(conninfo(make_url(url))) as connection:
            assert connection.execute("select 1").fetchone() == (1,)
    finally:
        pgkeel("db", "stop", "--dir", str(directory))


MANUAL_SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "SEE ALSO"]


def sections(manual: str) -> list[str]:
    return [line for line in manual.splitlines() if line and line == line.upper().lstrip()]


def test_help_reads_like_a_manual() -> None:
    result = pgkeel("db", "--help")
    assert result.returncode == 0
    assert sections(result.stdout) == [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ]
    for text in ["pgkeel db status  [--dir DIR]", "export DATABASE_URL=$(pgkeel db url)", "root"]:
        assert text in result.stdout


def test_main_help_lists_the_commands() -> None:
    result = console_script("--help")
    assert result.returncode == 0
    assert sections(result.stdout) == MANUAL_SECTIONS
    assert "  db      manage the service's development PostgreSQL cluster" in result.stdout


def test_unknown_command_exits_non_zero() -> None:
    result = pgkeel("db", "explode")
    assert result.returncode == 2
    assert "invalid choice: 'explode'" in result.stderr


def test_missing_command_exits_non_zero() -> None:
    assert pgkeel().returncode == 2
    assert "required: ACTION" in pgkeel("db").stderr


def test_a_directory_that_cannot_be_made_is_one_line() -> None:
    result = console_script("db", "start", "--dir", "/proc/pgkeel/db")
    assert result.returncode == 1
    assert result.stderr.startswith("pgkeel: error: cannot create db here (/proc/pgkeel: ")
    assert "use --dir DIR" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def role_attributes(url: str) -> tuple[bool, bool]:
    """(rolsuper, rolbypassrls) of the role ``url`` connects as."""
    with psycopg.connect(conninfo(make_url(url))) as connection:
        row = connection.execute(
            "select rolsuper, rolbypassrls from pg_roles where rolname = current_user"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


POLICY = "create policy by_tenant on notes using (tenant = current_setting('app.tenant', true))"


def test_start_makes_an_owner_and_a_runtime_role_bound_by_rls(open_dir: Path) -> None:
    directory = str(open_dir / ".pgkeel")
    runtime = pgkeel("db", "start", "--dir", directory).stdout.strip()
    try:
        owner = pgkeel("db", "url", "--owner", "--dir", directory).stdout.strip()
        superuser = pgkeel("db", "url", "--superuser", "--dir", directory).stdout.strip()
        assert make_url(owner).username == "app_owner"
        assert make_url(superuser).username == "postgres"
        assert role_attributes(runtime) == (False, False)
        assert role_attributes(owner) == (False, False)
        with psycopg.connect(conninfo(make_url(owner)), autocommit=True) as connection:
            for statement in (
                "create table notes (tenant text, body text)",
                "insert into notes values ('a', 'for a'), ('b', 'for b')",
                "alter table notes enable row level security",
                "alter table notes force row level security",
                POLICY,
            ):
                connection.execute(statement)
        with psycopg.connect(conninfo(make_url(runtime))) as connection:
            connection.execute("select set_config('app.tenant', 'a', false)")
            # default privileges: the runtime role reads the owner's new table, RLS applies
            assert connection.execute("select body from notes").fetchall() == [("for a",)]
        # a role that was given BYPASSRLS (or made superuser) by hand is repaired by `start`
        with psycopg.connect(conninfo(make_url(superuser)), autocommit=True) as connection:
            connection.execute("alter role app_user superuser bypassrls")
            connection.execute("grant app_owner to app_user")
        assert pgkeel("db", "start", "--dir", directory).stdout.strip() == runtime
        assert role_attributes(runtime) == (False, False)
        with psycopg.connect(conninfo(make_url(runtime))) as connection:
            member = "select pg_has_role('app_user', 'app_owner', 'MEMBER')"
            assert connection.execute(member).fetchone() == (False,)
    finally:
        pgkeel("db", "stop", "--dir", directory)


def owner_monitors(url: str) -> bool:
    """Whether the role ``url`` connects as may read the server's statistics (pg_monitor)."""
    with psycopg.connect(conninfo(make_url(url))) as connection:
        row = connection.execute(
            "select pg_has_role(current_user, 'pg_monitor', 'MEMBER')"
        ).fetchone()
    assert row is not None
    return bool(row[0])


def test_start_lets_the_owner_run_the_doctor(open_dir: Path) -> None:
    """The owner is a member of pg_monitor, as `pgkeel doctor` needs; `start` restores it."""
    directory = str(open_dir / ".pgkeel")
    pgkeel("db", "start", "--dir", directory)
    try:
        owner = pgkeel("db", "url", "--owner", "--dir", directory).stdout.strip()
        superuser = pgkeel("db", "url", "--superuser", "--dir", directory).stdout.strip()
        assert owner_monitors(owner)
        # a cluster made before the grant existed (or revoked by hand) gets it on the next start
        with psycopg.connect(conninfo(make_url(superuser)), autocommit=True) as connection:
            connection.execute("revoke pg_monitor from app_owner")
        assert not owner_monitors(owner)
        pgkeel("db", "start", "--dir", directory)
        assert owner_monitors(owner)
        runtime = pgkeel("db", "url", "--dir", directory).stdout.strip()
        assert not owner_monitors(runtime)
    finally:
        pgkeel("db", "stop", "--dir", directory)


def test_a_subdirectory_finds_the_projects_cluster(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (open_dir / "pyproject.toml").write_text("[project]\nname = 'svc'\n")
    nested = open_dir / "app" / "models"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    url = pgkeel("db", "start").stdout.strip()
    try:
        assert (open_dir / ".pgkeel" / "pgkeel.json").is_file()
        assert not (nested / ".pgkeel").exists()
        monkeypatch.chdir(open_dir / "app")
        assert pgkeel("db", "url").stdout.strip() == url
        assert pgkeel("db", "status").returncode == 0
    finally:
        pgkeel("db", "stop")


def test_reset_and_destroy_need_yes(open_dir: Path) -> None:
    directory = str(open_dir / ".pgkeel")
    started = pgkeel("db", "start", "--dir", directory)
    assert started.returncode == 0, started.stderr
    owner = pgkeel("db", "url", "--owner", "--dir", directory).stdout.strip()
    try:
        with psycopg.connect(conninfo(make_url(owner)), autocommit=True) as connection:
            connection.execute("create table doomed (id int)")
        refused = pgkeel("db", "reset", "--dir", directory)
        assert refused.returncode == 1
        assert "drops the database app" in refused.stderr
        assert "pgkeel db reset --yes" in refused.stderr
        psql = console_script(
            "db", "psql", "--owner", "--dir", directory, "--", "-Atc", "select count(*) from doomed"
        )
        assert (psql.returncode, psql.stdout.strip()) == (0, "0")
        without_dashes = console_script(
            "db", "psql", "-At", "--dir", directory, "-c", "select 1 + 1", "--owner"
        )
        assert (without_dashes.returncode, without_dashes.stdout.strip()) == (0, "2")
        assert pgkeel("db", "reset", "--yes", "--dir", directory).returncode == 0
        with psycopg.connect(conninfo(make_url(owner))) as connection:
            gone = connection.execute("select to_regclass('doomed')").fetchone()
            assert gone == (None,)
        kept = pgkeel("db", "destroy", "--dir", directory)
        assert kept.returncode == 1
        assert Path(directory).is_dir()
    finally:
        assert pgkeel("db", "destroy", "--yes", "--dir", directory).returncode == 0
    assert not Path(directory).exists()
    assert pgkeel("db", "status", "--dir", directory).returncode == 3


def test_version() -> None:
    result = console_script("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("pgkeel 0.")


@pytest.mark.parametrize("action", ["start", "stop", "status", "url", "psql", "reset", "destroy"])
def test_every_db_action_has_a_manual(action: str) -> None:
    result = pgkeel("db", action, "--help")
    assert result.returncode == 0
    assert sections(result.stdout) == [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
    ]
    assert f"pgkeel db {action} " in result.stdout
    assert "--dir DIR" in result.stdout


def test_check_says_in_one_paragraph_that_env_py_failed(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (open_dir / "migrations").mkdir()
    (open_dir / "migrations" / "env.py").write_text("import no_such_models_module\n")
    (open_dir / "pyproject.toml").write_text(
        '[tool.alembic]\nscript_location = "%(here)s/migrations"\n'
    )
    monkeypatch.chdir(open_dir)
    result = console_script("check", "--skip", "drift", "--skip", "squawk")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "env.py) failed to load at " in result.stderr
    assert "ModuleNotFoundError: No module named 'no_such_models_module'" in result.stderr
    assert "pgkeel check --traceback" in result.stderr
    traced = console_script("check", "--traceback", "--skip", "drift", "--skip", "squawk")
    assert "Traceback" in traced.stderr


LONG_NAMED_MODEL = """
from sqlalchemy.orm import DeclarativeBase, Mapped
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import UUIDPrimaryKeyMixin


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()


class QuarterlyRevenueRecognitionScheduleAdjustmentLineItemOverride(UUIDPrimaryKeyMixin, Base):
    amount: Mapped[int]
"""


def test_check_points_at_the_model_whose_name_is_too_long(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pgkeel's own error at import keeps its fix, and the place named is the model's line."""
    (open_dir / "migrations").mkdir()
    (open_dir / "models.py").write_text(LONG_NAMED_MODEL)
    (open_dir / "migrations" / "env.py").write_text(
        f"import sys\nsys.path.insert(0, {str(open_dir)!r})\nimport models\n"
    )
    (open_dir / "pyproject.toml").write_text(
        '[tool.alembic]\nscript_location = "%(here)s/migrations"\n'
    )
    monkeypatch.chdir(open_dir)
    result = console_script("check", "--skip", "drift", "--skip", "squawk")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"failed to load at {open_dir / 'models.py'}:" in result.stderr
    assert "NamingError: models.QuarterlyRevenueRecognition" in result.stderr
    assert "Table name 'quarterly_revenue_recognition_" in result.stderr
    assert "Fix: set a shorter __tablename__ (or class name). `pgkeel check --traceback`" in (
        result.stderr
    )
    assert ".." not in result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["doctor", "--help"], ["db", "start", "--help"]])
def test_help_starts_without_what_only_commands_need(argv: list[str]) -> None:
    """`pgkeel --help` answers at once: the driver, the version lookup, the doctor's checks,
    its report model and its formats load when a command that needs them runs."""
    heavy = (
        "sqlalchemy",
        "psycopg",
        "importlib.metadata",
        "pgkeel.doctor.model",
        "pgkeel.doctor.run",
        "pgkeel.doctor.render.as_html",
        "pgkeel.doctor.render.as_json",
    )
    code = (
        "import sys, contextlib, io\n"
        "from pgkeel.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_destroy_removes_only_a_clusters_own_files(open_dir: Path) -> None:
    """A --dir that names a project (no cluster in it) loses nothing, confirmed or not."""
    project = open_dir / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("important\n")
    (project / "data").mkdir()
    (project / "data" / "rows.csv").write_text("1,2\n")
    removed = pgkeel("db", "destroy", "--dir", str(project), "--yes")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"no cluster in {project}; nothing was removed"
    assert (project / "src" / "main.py").read_text() == "important\n"
    assert (project / "data" / "rows.csv").is_file()


def test_a_cluster_above_the_projects_root_is_not_the_projects(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two services under a folder that has a .pgkeel each get a cluster of their own."""
    (open_dir / ".pgkeel").mkdir()
    (open_dir / ".pgkeel" / "pgkeel.json").write_text('{"port": 5999}\n')
    service = open_dir / "services" / "billing"
    (service / "app").mkdir(parents=True)
    (service / "pyproject.toml").write_text("[project]\nname = 'billing'\n")
    assert find_cluster_dir(service / "app") == service / ".pgkeel"
    assert find_cluster_dir(open_dir / "services") == open_dir / ".pgkeel"
    monkeypatch.chdir(service / "app")
    status = pgkeel("db", "status")
    assert status.returncode == 3
    assert str(service / ".pgkeel") in status.stdout


def test_a_file_as_the_cluster_directory_is_refused_as_a_file(open_dir: Path) -> None:
    afile = open_dir / "afile"
    afile.write_text("mine\n")
    result = pgkeel("db", "start", "--dir", str(afile))
    assert result.returncode == 1
    assert result.stderr.startswith(f"pgkeel: error: {afile} is a file, not a directory;")
    assert "Fix: --dir a new or empty directory" in result.stderr
    assert "File exists" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert afile.read_text() == "mine\n"


@pytest.mark.parametrize("action", ["start", "status", "url", "stop"])
def test_an_empty_dir_is_refused_in_one_line(
    action: str, open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(open_dir)
    result = pgkeel("db", action, "--dir", "")
    assert result.returncode == 2
    assert result.stderr.startswith("pgkeel: error: --dir is empty; nothing was done. Fix:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(open_dir.iterdir()) == []


def test_a_directory_without_a_cluster_is_not_called_a_stopped_server(open_dir: Path) -> None:
    nowhere = open_dir / "nonexistent"
    url = pgkeel("db", "url", "--dir", str(nowhere))
    assert url.returncode == 3
    start = f"pgkeel db start --dir {nowhere}"
    assert url.stderr == f"pgkeel: there is no cluster in {nowhere}; `{start}` creates one.\n"
    status = pgkeel("db", "status", "--dir", str(nowhere))
    assert status.returncode == 3
    assert status.stdout.startswith(f"no cluster in {nowhere} (create one with `pgkeel db start")
    assert not nowhere.exists()


def test_psql_arguments_need_no_double_dash_where_the_server_is_stopped(open_dir: Path) -> None:
    """psql's own options are psql's, not a usage error (the server's state is checked after)."""
    result = pgkeel("db", "psql", "--dir", str(open_dir / "db"), "-c", "select 1")
    assert result.returncode == 3
    assert "unrecognized arguments" not in result.stderr
    unknown = pgkeel("db", "url", "--dir", str(open_dir / "db"), "-c", "select 1")
    assert unknown.returncode == 2
    assert "unrecognized arguments: -c select 1" in unknown.stderr


def test_start_warns_in_one_line_when_the_server_is_another_major(open_dir: Path) -> None:
    directory = str(open_dir / ".pgkeel")
    other = pgkeel("db", "start", "--dir", directory, "--postgres-version", "99")
    try:
        assert other.returncode == 0, other.stderr
        (warning,) = other.stderr.strip().splitlines()
        assert warning.startswith("pgkeel: warning: the development server is PostgreSQL ")
        assert "not PostgreSQL 99, which the service targets" in warning
        assert "Fix: install PostgreSQL 99" in warning
        major = (open_dir / ".pgkeel" / "data" / "PG_VERSION").read_text().strip()
        same = pgkeel("db", "start", "--dir", directory, "--postgres-version", major)
        assert (same.returncode, same.stderr) == (0, "")
    finally:
        pgkeel("db", "stop", "--dir", directory)
    refused = pgkeel("db", "start", "--dir", directory, "--postgres-version", "seventeen")
    assert refused.returncode == 2
    assert "'seventeen' is not a PostgreSQL major version" in refused.stderr
