"""``pgkeel db start|stop|status|url`` on a real persistent development cluster.

Most calls run ``pgkeel.cli.main`` in this process (the same code, without a Python start-up
each time); the console script itself is run where its exit status and output stream matter.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from pgkeel.cli import main
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
    assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    try:
        assert pgkeel("db", "url", "--dir", directory).stdout.strip() == url
        status = pgkeel("db", "status", "--dir", directory)
        assert (status.returncode, status.stdout.strip()) == (0, f"running: {url}")
        with psycopg.connect(conninfo(make_url(url)), autocommit=True) as connection:
            connection.execute("create table kept (id int)")
        assert pgkeel("db", "start", "--dir", directory).stdout.strip() == url
        assert pgkeel("db", "stop", "--dir", directory).stdout.strip() == "stopped"
        stopped_url = pgkeel("db", "url", "--dir", directory)
        assert stopped_url.returncode == 3
        assert "not running; run `pgkeel db start` first" in stopped_url.stderr
        assert pgkeel("db", "start", "--dir", directory).stdout.strip() == url
        with psycopg.connect(conninfo(make_url(url))) as connection:
            assert connection.execute("select to_regclass('kept') is not null").fetchone() == (
                True,
            )
    finally:
        pgkeel("db", "stop", "--dir", directory)
    assert pgkeel("db", "stop", "--dir", directory).stdout.strip() == "not running"


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
    for text in ["pgkeel db status [--dir DIR]", "export DATABASE_URL=$(pgkeel db url)", "root"]:
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
    assert result.stderr.startswith("pgkeel: error: /proc/pgkeel")
    assert "Fix: " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
