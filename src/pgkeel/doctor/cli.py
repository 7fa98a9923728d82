"""``pgkeel doctor``: the command line of the doctor (the ``pgkeel`` command adds it)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pgkeel.doctor.render import FORMATS, render
from pgkeel.errors import PgkeelError

if TYPE_CHECKING:
    import argparse

EXIT_FINDINGS = 4
MANUAL = """\
NAME
  pgkeel doctor - check a live database: pgkeel's standards, health, queries, sizes

SYNOPSIS
  pgkeel doctor [--url URL] [--runtime-url URL] [--format text|json|html|prometheus]
                [--output FILE] [--fail-on warning|error]

DESCRIPTION
  Connects to the database and runs every check in one READ ONLY transaction, under a
  statement timeout and a lock timeout, taking no lock stronger than ACCESS SHARE:
    schema   foreign keys without an index, duplicate and prefix indexes, unused and INVALID
             indexes, constraints not validated, tables without a primary key, timestamp
             without time zone, sequences and integer keys near their limit, tenant tables
             without row-level security (and, with --runtime-url, the runtime role)
    health   cache hit ratio, dead rows, table and index bloat, vacuum and analyze, transaction
             ID age, sequential scans, long queries and transactions, idle in transaction,
             blocked sessions, connections, inactive replication slots, replica lag
    queries  slow queries, and the top queries by total and by mean time (pg_stat_statements)
    sizes    the largest tables and indexes
  Each finding has a check id, a severity, the object, the evidence and the fix (SQL to run,
  or a setting to change). docs/doctor.md describes every check.

  The role needs the pg_monitor privileges (GRANT pg_monitor TO role); the sequence check also
  reads sequences (SELECT on them, or pg_read_all_data), and says so when it cannot.

OPTIONS
  --url URL              the database to check (default: $DATABASE_URL)
  --runtime-url URL      the URL the service connects with: also check that its role is bound by
                         row-level security (pgkeel check --runtime-url does the same)
  --format FORMAT        text (default), json (a versioned schema), html (one self-contained page
                         with charts), prometheus (exposition text for a textfile collector)
  --output FILE          write the report to FILE instead of standard output
  --fail-on SEVERITY     exit 4 when a finding of SEVERITY or worse is found (default: error)

FILES
  pyproject.toml   [tool.pgkeel.doctor] sets the thresholds (docs/doctor.md lists them); an
                   unknown key is an error

EXIT STATUS
  0 nothing at or above --fail-on; 4 something at or above it; 1 an error (one paragraph on
  stderr: cannot connect, a missing privilege, a bad setting); 2 a usage error.

EXAMPLES
  pgkeel doctor
  pgkeel doctor --format html --output doctor.html
  pgkeel doctor --format prometheus --output /var/lib/node_exporter/pgkeel.prom --fail-on error
  pgkeel doctor --runtime-url "$DATABASE_URL" --url "$MIGRATION_DATABASE_URL" --fail-on warning
"""


def _database_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise PgkeelError(
            "pgkeel doctor needs a database: neither --url nor DATABASE_URL is set. Fix: pass "
            "--url postgresql+psycopg://user@host/dbname, or export DATABASE_URL."
        )
    return str(url)


def _mode_for(path: Path) -> int:
    """The mode ``path`` has, or the one a new file gets under the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    A reader (node_exporter's textfile collector, a web server) sees the old report or the new
    one, never half of one.
    """
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.chmod(temporary, _mode_for(path))  # noqa: PTH101  # mkstemp makes it 0600
        os.replace(temporary, path)  # noqa: PTH105
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_doctor(args: argparse.Namespace) -> int:
    """Diagnose, write the report, and return the exit status --fail-on asks for."""
    from pgkeel.doctor.run import diagnose  # noqa: PLC0415  # the checks load when they run
    from pgkeel.doctor.thresholds import read_thresholds  # noqa: PLC0415

    thresholds = read_thresholds()
    report = diagnose(_database_url(args), runtime_url=args.runtime_url, thresholds=thresholds)
    text = render(report, args.format)
    if args.output:
        _write_atomically(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return EXIT_FINDINGS if report.at_or_above(args.fail_on) else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pgkeel doctor``."""
    parser.add_argument("--url", help="the database (default: $DATABASE_URL)")
    parser.add_argument("--runtime-url", metavar="URL", help="also check the service's role")
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE")
    parser.add_argument("--fail-on", choices=("warning", "error"), default="error")
    parser.set_defaults(handler=run_doctor)
