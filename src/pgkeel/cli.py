"""The ``pgkeel`` command: the development database of a service, and the standards check.

Each top-level command is added by one small function taking the subparsers object (see
``COMMANDS``); each sets ``handler``, a function from the parsed arguments to an exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgkeel.database import Attempt, PersistentCluster, find_binaries
from pgkeel.database.resolve import not_found_message
from pgkeel.doctor.cli import MANUAL as DOCTOR_MANUAL
from pgkeel.doctor.cli import add_arguments
from pgkeel.errors import DatabaseNotFoundError, PgkeelError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    Subparsers = argparse._SubParsersAction["ManualParser"]
    Handler = Callable[[argparse.Namespace], int]

DEFAULT_DIR = Path(".pgkeel")
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

MAIN_MANUAL = """\
NAME
  pgkeel - PostgreSQL data-layer standards for SQLAlchemy 2 services

SYNOPSIS
  pgkeel COMMAND [ARGUMENTS]
  pgkeel COMMAND --help

DESCRIPTION
  pgkeel's runtime library, Alembic plugin and pytest plugin are used from Python; this command
  covers what is done from a shell. `pgkeel COMMAND --help` prints the manual of a command.

COMMANDS
{commands}

EXIT STATUS
  0 on success, 1 on an error (one paragraph on stderr saying what is wrong and how to fix it),
  2 on a usage error; a command may define more (see its manual).

SEE ALSO
  docs/index.md in pgkeel's repository
"""

DB_MANUAL = """\
NAME
  pgkeel db - manage the development PostgreSQL cluster of a service

SYNOPSIS
  pgkeel db start  [--dir DIR]
  pgkeel db stop   [--dir DIR]
  pgkeel db status [--dir DIR]
  pgkeel db url    [--dir DIR]

DESCRIPTION
  A service's development database is a PostgreSQL cluster of its own, kept in DIR (default:
  ./.pgkeel). The first `start` creates it (initdb, user `postgres`, trust authentication);
  later runs reuse its data. The server listens on 127.0.0.1 only, on the first free port from
  5433 up, chosen when the cluster is created and kept in DIR/pgkeel.json (a new one is chosen
  only if another program has taken it meanwhile).

  The server programs are the newest PostgreSQL installed on this machine (on PATH, from
  `pg_config --bindir`, in /usr/lib/postgresql/*/bin), else the ones bundled in the pgserver
  wheel (pip install 'pgkeel[embedded]').

  PostgreSQL refuses to run as root. When pgkeel runs as root (as in most CI containers), the
  server runs as the `postgres` system user, or as a `pgkeel` system user created for it, and
  DIR/data belongs to that user.

COMMANDS
  start   create the cluster if DIR has none, start the server, wait until it accepts
          connections, and print its URL; does nothing but print the URL if it already runs
  stop    stop the server (fast shutdown); the data stays in DIR
  status  print `running: URL` and exit 0, or say it is not running and exit 3
  url     print the SQLAlchemy URL (postgresql+psycopg://...) and exit 0, or exit 3 with a
          message on stderr if the server is not running

OPTIONS
  --dir DIR   the cluster directory (default: ./.pgkeel); give the same one to every command

ENVIRONMENT
  PGKEEL_PG_BINDIR   the bin directory of the PostgreSQL to use, instead of searching
                     (`pg_config --bindir` prints it)

FILES
  DIR/data           the data directory (PGDATA)
  DIR/postgres.log   the server's log
  DIR/pgkeel.json    the port

EXIT STATUS
  0 success; 1 an error (one paragraph on stderr naming the problem and the fix); 2 a usage
  error; 3 `status` or `url` found the server stopped.

EXAMPLES
  pgkeel db start
  export DATABASE_URL=$(pgkeel db url)   # for the service, Alembic and the tests
  pgkeel db stop

SEE ALSO
  docs/testing.md in pgkeel's repository (the database for tests comes from the same search)
"""


class ManualParser(argparse.ArgumentParser):
    """An argument parser whose ``--help`` prints a manual page verbatim when it has one."""

    def __init__(self, *args: Any, manual: str = "", **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.manual = manual

    def format_help(self) -> str:
        """The manual page, or argparse's generated help for parsers without one."""
        return self.manual or super().format_help()


def _cluster(args: argparse.Namespace) -> PersistentCluster:
    attempts: list[Attempt] = []
    binaries = find_binaries(attempts)
    if binaries is None:
        raise DatabaseNotFoundError(not_found_message(attempts))
    return PersistentCluster(Path(args.dir), binaries)


def _start(args: argparse.Namespace) -> int:
    cluster = _cluster(args).start()
    print(cluster.url().render_as_string())
    return EXIT_OK


def _stop(args: argparse.Namespace) -> int:
    stopped = _cluster(args).stop()
    print("stopped" if stopped else "not running")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    url = _cluster(args).status()
    if url is None:
        print(f"not running (start it with `pgkeel db start --dir {args.dir}`)")
        return EXIT_NOT_RUNNING
    print(f"running: {url}")
    return EXIT_OK


def _url(args: argparse.Namespace) -> int:
    url = _cluster(args).status()
    if url is None:
        print(
            f"pgkeel: the cluster in {args.dir} is not running; run `pgkeel db start` first.",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNING
    print(url)
    return EXIT_OK


DB_ACTIONS: dict[str, tuple[Handler, str]] = {
    "start": (_start, "create the cluster if needed, start it, print its URL"),
    "stop": (_stop, "stop the server; the data stays"),
    "status": (_status, "say whether the server runs (exit 3 if not)"),
    "url": (_url, "print the SQLAlchemy URL (exit 3 if the server is not running)"),
}


def add_db_command(commands: Subparsers) -> None:
    """Add ``pgkeel db start|stop|status|url``."""
    summary = "manage the service's development PostgreSQL cluster"
    db = commands.add_parser("db", help=summary, manual=DB_MANUAL)
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, (handler, text) in DB_ACTIONS.items():
        action = actions.add_parser(name, help=text, description=f"pgkeel db {name}: {text}.")
        action.add_argument(
            "--dir", default=str(DEFAULT_DIR), help="the cluster directory (default: ./.pgkeel)"
        )
        action.set_defaults(handler=handler)


CHECK_MANUAL = """\
NAME
  pgkeel check - check the models and the migrations against pgkeel's standards

SYNOPSIS
  pgkeel check [--config FILE] [--skip STEP]... [--squawk-exclude RULE]... [--runtime-url URL]

DESCRIPTION
  Runs three steps in the service's directory and reports every finding of each:
    rules   the model rules (rule id, table.column, the problem, the fix, the opt-out), on the
            models the migration environment's env.py passes to run_migrations
    drift   `alembic check`: the database at DATABASE_URL (or sqlalchemy.url) is at the head
            revision and has no difference from the models
    squawk  squawk (pip install squawk-cli) over `alembic upgrade head --sql`; skipped when
            squawk is not installed
  and, with --runtime-url, a fourth:
    runtime-role  the role the service connects as is bound by row-level security: not a
            superuser, no BYPASSRLS (nor a member of such a role), owner of no table with a
            tenant_id, and every such table has RLS enabled, forced and its policy

OPTIONS
  --config FILE          alembic.ini or pyproject.toml (default: ./alembic.ini, else
                         ./pyproject.toml with a [tool.alembic] table)
  --skip STEP            do not run STEP (rules, drift or squawk); may be repeated
  --squawk-exclude RULE  one more squawk rule to turn off; may be repeated. Always off:
                         prefer-text-field (pgkeel's Str255 and Alembic's version table are
                         varchar) and prefer-bigint-over-int/-smallint (pgkeel's ids are uuid,
                         its int columns are bounded); docs/alembic.md says why
  --runtime-url URL      the service's runtime database URL (often $DATABASE_URL, with
                         $MIGRATION_DATABASE_URL for the owner): check that role too. Not
                         automatic, since in development DATABASE_URL often names a superuser

EXIT STATUS
  0 no finding; 1 a finding in any step, or an error (one paragraph on stderr); 2 a usage error.

EXAMPLES
  pgkeel check
  pgkeel check --skip drift          # no database at hand (a pre-commit hook)
  pgkeel check --runtime-url "$DATABASE_URL"   # before a deployment

SEE ALSO
  docs/alembic.md in pgkeel's repository
"""


def _check(args: argparse.Namespace) -> int:
    try:
        from alembic_extensions import check  # noqa: PLC0415  # Alembic only when checking
    except ImportError as exc:
        raise PgkeelError(
            f"pgkeel check needs Alembic ({exc}). Fix: pip install 'pgkeel[alembic]'."
        ) from None
    config = check.find_config(args.config, Path.cwd())
    excluded = [*check.SQUAWK_EXCLUDED, *(args.squawk_exclude or [])]
    results = check.run_check(
        config, skip=args.skip, squawk_excluded=excluded, runtime_url=args.runtime_url
    )
    print(check.report(results))
    return EXIT_OK if all(result.passed for result in results) else EXIT_ERROR


def add_check_command(commands: Subparsers) -> None:
    """Add ``pgkeel check``: model rules, migration drift, squawk."""
    summary = "check the models and migrations: rules, drift, squawk"
    check = commands.add_parser("check", help=summary, manual=CHECK_MANUAL)
    check.add_argument("--config", help="alembic.ini or pyproject.toml")
    check.add_argument("--skip", action="append", default=[], choices=("rules", "drift", "squawk"))
    check.add_argument("--squawk-exclude", action="append", metavar="RULE")
    check.add_argument("--runtime-url", metavar="URL")
    check.set_defaults(handler=_check)


def add_doctor_command(commands: Subparsers) -> None:
    """Add ``pgkeel doctor``: the live database checked (see ``pgkeel.doctor.cli``)."""
    summary = "check a live database: standards, health, queries, sizes"
    add_arguments(commands.add_parser("doctor", help=summary, manual=DOCTOR_MANUAL))


COMMANDS: list[Callable[[Subparsers], None]] = [
    add_db_command,
    add_check_command,
    add_doctor_command,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pgkeel``, with help that reads like a manual page."""
    parser = ManualParser(prog="pgkeel")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(commands)
    parser.manual = MAIN_MANUAL.format(commands=_command_list(commands))
    return parser


def _command_list(commands: Subparsers) -> str:
    """The COMMANDS section of the main manual, from each command's one-line help."""
    return "\n".join(f"  {c.dest:<8}{c.help}" for c in commands._get_subactions())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors become one paragraph on stderr and a non-zero status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except PgkeelError as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}. Fix: check that path and its permissions.")
    except KeyboardInterrupt:
        print("pgkeel: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str) -> int:
    print(f"pgkeel: error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
