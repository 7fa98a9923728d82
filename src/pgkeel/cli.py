"""The ``pgkeel`` command: the development database of a service, and the standards check.

Each top-level command is added by one small function taking the subparsers object (see
``COMMANDS``); each sets ``handler``, a function from the parsed arguments to an exit status.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import textwrap
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgkeel._lazy import LazyModule
from pgkeel.doctor.cli import MANUAL as DOCTOR_MANUAL
from pgkeel.doctor.cli import add_arguments
from pgkeel.errors import DatabaseNotFoundError, PgkeelError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pgkeel.database import Attempt, PersistentCluster, PostgresBinaries

    Subparsers = argparse._SubParsersAction["ManualParser"]
    Handler = Callable[[argparse.Namespace], int]

# The db commands need psycopg and SQLAlchemy's engine: they load when such a command runs, so
# that `pgkeel --help` and `pgkeel COMMAND --help` answer at once.
_database = LazyModule("pgkeel.database")
_cluster_files = LazyModule("pgkeel.database.cluster")
_devroles = LazyModule("pgkeel.database.devroles")
_resolve = LazyModule("pgkeel.database.resolve")

DEFAULT_DIR = Path(".pgkeel")
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_INTERRUPTED = 130

MAIN_MANUAL = """\
NAME
  pgkeel - PostgreSQL data-layer standards for SQLAlchemy 2 services

SYNOPSIS
  pgkeel COMMAND [ARGUMENTS]
  pgkeel COMMAND --help
  pgkeel --version

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
  pgkeel db start   [--dir DIR] [--postgres-version MAJOR]
  pgkeel db stop    [--dir DIR]
  pgkeel db status  [--dir DIR]
  pgkeel db url     [--dir DIR] [--owner | --superuser]
  pgkeel db psql    [--dir DIR] [--owner | --superuser] [--] [PSQL-ARGUMENTS]
  pgkeel db reset   [--dir DIR] --yes
  pgkeel db destroy [--dir DIR] --yes

DESCRIPTION
  A service's development database is a PostgreSQL cluster of its own, kept in DIR. Without
  --dir, pgkeel looks for a .pgkeel directory in the current directory and each parent up to
  the nearest one with a pyproject.toml (the service's root), so a command run from a
  subdirectory of the service finds the service's cluster and never another project's; when
  there is none, `start` creates .pgkeel in that root (else here). The first
  `start` creates the cluster (initdb, superuser `postgres`, trust authentication); later runs
  reuse its data. The server listens on 127.0.0.1 only, on the first free port from 5433 up,
  chosen when the cluster is created and kept in DIR/pgkeel.json.

  Every `start` also makes sure of the two roles a deployment has, in the database `app`:
    app_owner  owns the database and runs the migrations (MIGRATION_DATABASE_URL)
    app_user   the runtime role the service connects as (DATABASE_URL): NOSUPERUSER,
               NOBYPASSRLS, with read and write on every table and sequence app_owner creates
               (default privileges), so row-level security applies as in production
  `pgkeel db url` prints app_user's URL, `--owner` app_owner's, `--superuser` postgres's.

  The server programs are the newest PostgreSQL installed on this machine (on PATH, from
  `pg_config --bindir`, in /usr/lib/postgresql/*/bin), else the ones bundled in the pgserver
  wheel (pip install 'pgkeel[embedded]'). PostgreSQL refuses to run as root: when pgkeel runs
  as root (as in most CI containers), the server runs as the `postgres` system user, or as a
  `pgkeel` system user created for it, and DIR/data belongs to that user.

COMMANDS
{actions}

OPTIONS
  --dir DIR     the cluster directory (default: the nearest .pgkeel, see DESCRIPTION)
  --postgres-version MAJOR
                `start`: the PostgreSQL major version the service targets: installed
                binaries of that major are preferred, and a warning says when the server
                is another major
  --owner       `url`, `psql`: as the owner role app_owner
  --superuser   `url`, `psql`: as the superuser postgres
  --yes         `reset`, `destroy`: confirm that the data is to be lost

ENVIRONMENT
  PGKEEL_PG_BINDIR   the bin directory of the PostgreSQL to use, instead of searching
                     (`pg_config --bindir` prints it)

FILES
  DIR/data           the data directory (PGDATA)
  DIR/postgres.log   the server's log
  DIR/pgkeel.json    the port

EXIT STATUS
  0 success; 1 an error (one paragraph on stderr naming the problem and the fix); 2 a usage
  error; 3 `status`, `url` or `psql` found the server stopped.

EXAMPLES
  pgkeel db start
  export DATABASE_URL=$(pgkeel db url) MIGRATION_DATABASE_URL=$(pgkeel db url --owner)
  pgkeel db psql --owner -c 'table alembic_version'
  pgkeel db reset --yes      # an empty database `app`, the roles kept
  pgkeel db stop

SEE ALSO
  docs/testing.md in pgkeel's repository (the database for tests comes from the same search)
"""

ACTION_MANUAL = """\
NAME
  pgkeel db {name} - {summary}

SYNOPSIS
  pgkeel db {name} {synopsis}

DESCRIPTION
{description}

OPTIONS
{options}

EXIT STATUS
{exit_status}

SEE ALSO
  pgkeel db --help (the cluster, its roles, where it is kept)
"""

_DIR_OPTION = "  --dir DIR     the cluster directory (default: the nearest .pgkeel upward)"
_VERSION_OPTION = (
    "  --postgres-version MAJOR\n"
    "                the major version the service targets: preferred among the installed\n"
    "                ones; a one-line warning on stderr when the server is another major"
)
_ROLE_OPTIONS = (
    "  --owner       as the owner role app_owner (migrations)\n"
    "  --superuser   as the cluster's superuser postgres"
)
_YES_OPTION = "  --yes         confirm that the data is to be lost (refused without it)"
_STATUS_3 = "  0 success; 1 an error (one paragraph on stderr); 2 a usage error; 3 not running."
_STATUS_1 = "  0 success; 1 an error (one paragraph on stderr); 2 a usage error."


@dataclass(frozen=True)
class _Action:
    """One ``pgkeel db`` action: its handler and the parts of its manual page."""

    handler: Handler
    summary: str
    synopsis: str
    description: str
    options: str = _DIR_OPTION
    exit_status: str = _STATUS_1

    def manual(self, name: str) -> str:
        """The action's manual page."""
        description = textwrap.indent(textwrap.fill(self.description, 94), "  ")
        return ACTION_MANUAL.format(
            name=name,
            summary=self.summary,
            synopsis=self.synopsis,
            description=description,
            options=self.options,
            exit_status=self.exit_status,
        )


class ManualParser(argparse.ArgumentParser):
    """An argument parser whose ``--help`` prints a manual page verbatim when it has one."""

    def __init__(self, *args: Any, manual: str = "", **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.manual = manual

    def format_help(self) -> str:
        """The manual page, or argparse's generated help for parsers without one."""
        return self.manual or super().format_help()


def find_cluster_dir(start: Path) -> Path:
    """The nearest ``.pgkeel`` in ``start`` or a parent, up to the project's root.

    The search stops at the nearest directory holding a ``pyproject.toml``: a service's cluster
    is its own, and a ``.pgkeel`` above it (a folder of several services, a home directory)
    belongs to something else. Without a cluster on the way, the project's root gets one (else
    ``start``).
    """
    for directory in (start, *start.parents):
        if (directory / DEFAULT_DIR / _cluster_files.STATE_FILE).is_file():
            return directory / DEFAULT_DIR
        if (directory / "pyproject.toml").is_file():
            return directory / DEFAULT_DIR
    return start / DEFAULT_DIR


class _UsageError(PgkeelError):
    """Arguments that cannot mean anything (exit status 2)."""


def _cluster(args: argparse.Namespace) -> PersistentCluster:
    if args.dir is not None and not args.dir.strip():
        raise _UsageError(
            "--dir is empty; nothing was done. Fix: --dir DIR names the cluster's directory, or "
            "leave --dir out for the nearest .pgkeel."
        )
    attempts: list[Attempt] = []
    wanted = getattr(args, "postgres_version", None)
    binaries = _database.find_binaries(attempts, prefer=wanted)
    if binaries is None:
        raise DatabaseNotFoundError(_resolve.not_found_message(attempts))
    directory = Path(args.dir) if args.dir else find_cluster_dir(Path.cwd())
    cluster: PersistentCluster = _database.PersistentCluster(directory, binaries)
    return cluster


def _warn_other_major(binaries: PostgresBinaries, wanted: int | None) -> None:
    """One line on stderr when the server is not the major version the service targets."""
    if wanted is None or binaries.major == wanted:
        return
    print(
        f"pgkeel: warning: the development server is PostgreSQL {binaries.major} "
        f"({binaries.origin}), not PostgreSQL {wanted}, which the service targets "
        f"(--postgres-version). Fix: install PostgreSQL {wanted} (pgkeel's docs/testing.md says "
        "how), or set PGKEEL_PG_BINDIR to its bin directory.",
        file=sys.stderr,
    )


def _start_command(args: argparse.Namespace) -> str:
    """``pgkeel db start``, with the ``--dir`` the user gave."""
    return "pgkeel db start" + (f" --dir {shlex.quote(args.dir)}" if args.dir else "")


def _role(args: argparse.Namespace) -> tuple[str, str]:
    """The (database, user) that ``--owner``/``--superuser`` (or neither) ask for."""
    if getattr(args, "superuser", False):
        return "postgres", _cluster_files.SUPERUSER
    role = _devroles.OWNER_ROLE if getattr(args, "owner", False) else _devroles.RUNTIME_ROLE
    return _devroles.DEV_DATABASE, role


def _start(args: argparse.Namespace) -> int:
    persistent = _cluster(args)
    _warn_other_major(persistent.binaries, args.postgres_version)
    cluster = persistent.start()
    print(cluster.url(_devroles.DEV_DATABASE, _devroles.RUNTIME_ROLE).render_as_string())
    return EXIT_OK


def _stop(args: argparse.Namespace) -> int:
    stopped = _cluster(args).stop()
    print("stopped" if stopped else "not running")
    return EXIT_OK


def _not_running(args: argparse.Namespace, persistent: PersistentCluster) -> int:
    """Say on stderr that there is no server: no cluster in the directory, or one stopped."""
    start, where = _start_command(args), persistent.directory
    if persistent.holds_a_cluster():
        said = f"the cluster in {where} is not running; run `{start}` first"
    else:
        said = f"there is no cluster in {where}; `{start}` creates one"
    print(f"pgkeel: {said}.", file=sys.stderr)
    return EXIT_NOT_RUNNING


def _status(args: argparse.Namespace) -> int:
    persistent = _cluster(args)
    if persistent.status() is None:
        start = f"pgkeel db start --dir {shlex.quote(str(persistent.directory))}"
        if persistent.holds_a_cluster():
            print(f"not running (start it with `{start}`)")
        else:
            print(f"no cluster in {persistent.directory} (create one with `{start}`)")
        return EXIT_NOT_RUNNING
    url = persistent.cluster().url(_devroles.DEV_DATABASE, _devroles.RUNTIME_ROLE)
    print(f"running: {url.render_as_string()}")
    return EXIT_OK


def _url(args: argparse.Namespace) -> int:
    persistent = _cluster(args)
    if persistent.status() is None:
        return _not_running(args, persistent)
    print(persistent.cluster().url(*_role(args)).render_as_string())
    return EXIT_OK


def _psql(args: argparse.Namespace) -> int:
    persistent = _cluster(args)
    if persistent.status() is None:
        return _not_running(args, persistent)
    database, user = _role(args)
    psql = shutil.which("psql", path=str(persistent.binaries.bindir)) or shutil.which("psql")
    if psql is None:
        raise PgkeelError(
            f"psql is neither in {persistent.binaries.bindir} nor on PATH. Fix: install "
            "PostgreSQL's client (e.g. apt-get install postgresql-client)."
        )
    port = persistent.cluster().port
    target = f"host=127.0.0.1 port={port} user={user} dbname={database}"
    return subprocess.run([psql, target, *args.psql_args], check=False).returncode


def _confirmed(args: argparse.Namespace, what: str) -> bool:
    if args.yes:
        return True
    print(
        f"pgkeel: error: `pgkeel db {args.action}` {what}; nothing was done. Fix: run "
        f"`pgkeel db {args.action} --yes` to confirm.",
        file=sys.stderr,
    )
    return False


def _reset(args: argparse.Namespace) -> int:
    persistent = _cluster(args)
    if not _confirmed(args, f"drops the database {_devroles.DEV_DATABASE} and every row in it"):
        return EXIT_ERROR
    if persistent.status() is None:
        return _not_running(args, persistent)
    _devroles.reset_dev_database(persistent.cluster())
    print(f"reset: the database {_devroles.DEV_DATABASE} is empty, owned by {_devroles.OWNER_ROLE}")
    return EXIT_OK


def _destroy(args: argparse.Namespace) -> int:
    persistent = _cluster(args)
    if not _confirmed(args, f"stops the cluster and removes its data in {persistent.directory}"):
        return EXIT_ERROR
    if not persistent.holds_a_cluster():
        print(f"no cluster in {persistent.directory}; nothing was removed")
        return EXIT_OK
    persistent.stop()
    persistent.remove()
    if persistent.directory.exists():
        print(f"removed the cluster in {persistent.directory} (the other files there are kept)")
    else:
        print(f"removed {persistent.directory}")
    return EXIT_OK


DB_ACTIONS: dict[str, _Action] = {
    "start": _Action(
        _start,
        "create the cluster if needed, start it, make its roles, print the runtime URL",
        "[--dir DIR] [--postgres-version MAJOR]",
        "Creates the cluster in DIR on first use (initdb), starts the server in the background "
        "and waits until it accepts connections; does nothing more when it already runs. Then "
        "creates or repairs the roles app_owner and app_user and the database app (see `pgkeel "
        "db --help`), and prints app_user's URL, as DATABASE_URL takes it. With "
        "--postgres-version, the installed server of that major is preferred, and a warning "
        "says so when the server is another one.",
        f"{_DIR_OPTION}\n{_VERSION_OPTION}",
    ),
    "stop": _Action(
        _stop,
        "stop the server; the data stays",
        "[--dir DIR]",
        "Stops the server (fast shutdown) and prints `stopped`, or `not running`. The data "
        "stays in DIR; `pgkeel db start` starts it again.",
    ),
    "status": _Action(
        _status,
        "say whether the server runs (exit 3 if not)",
        "[--dir DIR]",
        "Prints `running: URL` (app_user's URL) and exits 0, or says that the server is not "
        "running and exits 3.",
        exit_status=_STATUS_3,
    ),
    "url": _Action(
        _url,
        "print a SQLAlchemy URL: the runtime role's, the owner's or the superuser's",
        "[--dir DIR] [--owner | --superuser]",
        "Prints the SQLAlchemy URL (postgresql+psycopg://...) of the database app as the "
        "runtime role app_user (for DATABASE_URL), or as app_owner with --owner (for "
        "MIGRATION_DATABASE_URL), or of the database postgres as the superuser with "
        "--superuser. Exits 3 with a message on stderr if the server is not running.",
        f"{_DIR_OPTION}\n{_ROLE_OPTIONS}",
        _STATUS_3,
    ),
    "psql": _Action(
        _psql,
        "open psql on the development database",
        "[--dir DIR] [--owner | --superuser] [--] [PSQL-ARGUMENTS]",
        "Runs psql (from the cluster's PostgreSQL, else from PATH) on the database app as "
        "app_user, or as app_owner with --owner, or on postgres as the superuser with "
        "--superuser. Every other argument goes to psql (`pgkeel db psql -c 'select 1'`); after "
        "--, all of them do (`pgkeel db psql -- -h` for psql's own -h). Exits with psql's "
        "status, or 3 if the server is not running.",
        f"{_DIR_OPTION}\n{_ROLE_OPTIONS}",
        "  psql's exit status; 1 an error (one paragraph on stderr); 3 not running.",
    ),
    "reset": _Action(
        _reset,
        "drop and recreate the development database (needs --yes)",
        "[--dir DIR] --yes",
        "Drops the database app (disconnecting its sessions) and creates it again, empty and "
        "owned by app_owner, with the runtime role's privileges; the roles and the cluster "
        "stay. Without --yes it does nothing and says so. Run `alembic upgrade head` after.",
        f"{_DIR_OPTION}\n{_YES_OPTION}",
        "  0 success; 1 an error or no --yes (one paragraph on stderr); 3 not running.",
    ),
    "destroy": _Action(
        _destroy,
        "stop the server and remove the cluster directory (needs --yes)",
        "[--dir DIR] --yes",
        "Stops the server if it runs and removes DIR with all its data. Without --yes it does "
        "nothing and says so. The next `pgkeel db start` creates a new cluster.",
        f"{_DIR_OPTION}\n{_YES_OPTION}",
    ),
}


def add_db_command(commands: Subparsers) -> None:
    """Add ``pgkeel db start|stop|status|url|psql|reset|destroy``."""
    summary = "manage the service's development PostgreSQL cluster"
    listing = "\n".join(f"  {name:<8}{action.summary}" for name, action in DB_ACTIONS.items())
    db = commands.add_parser("db", help=summary, manual=DB_MANUAL.format(actions=listing))
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, action in DB_ACTIONS.items():
        parser = actions.add_parser(name, help=action.summary, manual=action.manual(name))
        parser.add_argument("--dir", help="the cluster directory")
        if "--owner" in action.options:
            roles = parser.add_mutually_exclusive_group()
            roles.add_argument("--owner", action="store_true")
            roles.add_argument("--superuser", action="store_true")
        if "--yes" in action.options:
            parser.add_argument("--yes", action="store_true")
        if "--postgres-version" in action.options:
            parser.add_argument("--postgres-version", type=_major, metavar="MAJOR")
        parser.set_defaults(handler=action.handler)


def _major(given: str) -> int:
    """A ``--postgres-version`` value: a major version number such as 17."""
    if not given.isdigit():
        raise argparse.ArgumentTypeError(f"{given!r} is not a PostgreSQL major version, e.g. 17")
    return int(given)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; what ``pgkeel db psql`` does not know, and all after ``--``, is psql's."""
    given = list(sys.argv[1:] if argv is None else argv)
    cut = given.index("--") if "--" in given else len(given)
    args, extra = parser.parse_known_args(given[:cut])
    if getattr(args, "action", None) != "psql":
        return parser.parse_args(given)
    args.psql_args = [*extra, *given[cut + 1 :]]
    return args


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
  --traceback            on an error (env.py failing to load, say), Python's full traceback
                         before the one-paragraph message

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
    check.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS)
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
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(commands)
    parser.manual = MAIN_MANUAL.format(commands=_command_list(commands))
    return parser


def _version() -> str:
    """The installed version of pgkeel."""
    # importlib.metadata costs ~25 ms to import: only `--version` pays for it.
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version("pgkeel")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: prints ``pgkeel VERSION`` and exits; the version is read only then."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        _namespace: argparse.Namespace,
        _values: object,
        _option_string: str | None = None,
    ) -> None:
        print(f"pgkeel {_version()}")
        parser.exit()


def _command_list(commands: Subparsers) -> str:
    """The COMMANDS section of the main manual, from each command's one-line help."""
    return "\n".join(f"  {c.dest:<8}{c.help}" for c in commands._get_subactions())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors become one paragraph on stderr and a non-zero status."""
    args = _parse(build_parser(), argv)
    try:
        return int(args.handler(args))
    except _UsageError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except PgkeelError as exc:
        if args.traceback:
            traceback.print_exception(exc)
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
