"""The ``pgkeel`` command: the development database of a service, and the standards check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pgkeel.database import Attempt, PersistentCluster, find_binaries
from pgkeel.database.resolve import not_found_message
from pgkeel.errors import DatabaseNotFoundError, PgkeelError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

DEFAULT_DIR = Path(".pgkeel")
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3

DB_DESCRIPTION = """\
Manage the development PostgreSQL cluster of the service in the current directory.

The cluster lives in DIR (default: ./.pgkeel), is created on the first `start`, and keeps its
data across runs. It listens on 127.0.0.1 only, on a free port chosen at creation. When run as
root, the server runs as the unprivileged `postgres` user (or a `pgkeel` system user that is
created for it), because PostgreSQL refuses to run as root.

commands:
  start    create the cluster if needed, start it, print its URL
  stop     stop it (its data stays in DIR)
  status   print the URL and exit 0 if it runs; exit 3 if it does not
  url      print the SQLAlchemy URL, for example: export DATABASE_URL=$(pgkeel db url)
"""

EPILOG = """\
exit status: 0 on success, 1 on an error (the message says what to do), 3 when `db status`
or `db url` finds the cluster stopped.
"""


def _cluster(args: argparse.Namespace) -> PersistentCluster:
    attempts: list[Attempt] = []
    binaries = find_binaries(attempts)
    if binaries is None:
        raise DatabaseNotFoundError(not_found_message(attempts))
    return PersistentCluster(Path(args.dir), binaries)


def _start(args: argparse.Namespace) -> int:
    cluster = _cluster(args).start()
    print(cluster.url().render_as_string())
    return 0


def _stop(args: argparse.Namespace) -> int:
    stopped = _cluster(args).stop()
    print("stopped" if stopped else "not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    url = _cluster(args).status()
    if url is None:
        print(f"not running (start it with `pgkeel db start --dir {args.dir}`)")
        return EXIT_NOT_RUNNING
    print(f"running: {url}")
    return 0


def _url(args: argparse.Namespace) -> int:
    url = _cluster(args).status()
    if url is None:
        print(
            f"pgkeel: the cluster in {args.dir} is not running; run `pgkeel db start` first.",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNING
    print(url)
    return 0


DB_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "start": (_start, "create the cluster if needed, start it, print its URL"),
    "stop": (_stop, "stop the cluster; its data stays"),
    "status": (_status, "say whether the cluster runs (exit 3 if not)"),
    "url": (_url, "print the cluster's SQLAlchemy URL (exit 3 if it is not running)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pgkeel``, with help that reads like a manual page."""
    parser = argparse.ArgumentParser(
        prog="pgkeel",
        description="PostgreSQL data-layer standards for SQLAlchemy services.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db = commands.add_parser(
        "db",
        help="manage the service's development PostgreSQL cluster",
        description=DB_DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, (handler, text) in DB_COMMANDS.items():
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--dir", default=str(DEFAULT_DIR), help="cluster directory (default: ./.pgkeel)"
        )
        action.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors become one paragraph on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except PgkeelError as exc:
        print(f"pgkeel: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
