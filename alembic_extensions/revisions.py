"""Sequential, readable revisions: ``0001_create_users.py`` with revision id ``"0001"``.

The next number is one more than the highest numbered revision of the script directory. Two
heads (two branches that each added a revision) or two files with the same number stop the new
revision with a message that says how to reconcile them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.operations import ops
from alembic.util import CommandError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

FILE_TEMPLATE = "%(rev)s_%(slug)s"
WIDTH = 4
_NUMBERED_FILE = re.compile(r"^(\d+)_.*\.py$")


class RevisionOrderError(CommandError):
    """The script directory has two heads or two revisions with one number."""


def _version_files(script: ScriptDirectory) -> list[Path]:
    return [
        path
        for location in script.version_locations or [script.versions]
        if Path(location).is_dir()
        for path in sorted(Path(location).iterdir())
    ]


def check_unique_numbers(script: ScriptDirectory) -> None:
    """Refuse two revision files that start with the same number (two branches both added one)."""
    seen: dict[int, Path] = {}
    for path in _version_files(script):
        match = _NUMBERED_FILE.match(path.name)
        if match is None:
            continue
        number = int(match.group(1))
        if number in seen:
            raise RevisionOrderError(
                f"Two revisions share the number {number:0{WIDTH}d}: {seen[number].name} and "
                f"{path.name} (two branches each added one). Fix: renumber the newer file: rename "
                f"it to the next free number and set its `revision` to that number and its "
                f"`down_revision` to the number before it."
            )
        seen[number] = path


def check_single_head(script: ScriptDirectory) -> None:
    """Refuse to add a revision while the history has more than one head."""
    heads = sorted(script.get_heads())
    if len(heads) > 1:
        raise RevisionOrderError(
            f"The migration history has {len(heads)} heads ({', '.join(heads)}): two branches "
            "each added a revision. Fix: renumber one of them so that it follows the other "
            "(set its `down_revision`), or run `alembic merge heads -m 'merge'`, then generate "
            "the new revision."
        )


def next_revision_id(script: ScriptDirectory) -> str:
    """One more than the highest numbered revision, zero-padded (``"0001"`` for the first)."""
    revisions = list(script.walk_revisions(base="base", head="heads"))
    numbers = [int(rev.revision) for rev in revisions if rev.revision.isdigit()]
    highest = max(numbers, default=len(revisions))
    return f"{highest + 1:0{WIDTH}d}"


def describe(upgrade_ops: Iterable[ops.MigrateOperation]) -> str:
    """A message for a revision written without ``-m``, from its first operation."""
    for op in upgrade_ops:
        if isinstance(op, ops.CreateTableOp):
            return f"create {op.table_name}"
        if isinstance(op, ops.DropTableOp):
            return f"drop {op.table_name}"
        if isinstance(op, ops.ModifyTableOps):
            return f"update {op.table_name}"
    return "update schema"


def number_revisions(context: MigrationContext, directives: list[ops.MigrationScript]) -> None:
    """Give each new revision the next number as its id and file-name prefix."""
    script = context.script
    if script is None:
        return
    check_unique_numbers(script)
    if any(directive.head in (None, "head") for directive in directives):
        check_single_head(script)
    script.file_template = FILE_TEMPLATE
    first = int(next_revision_id(script))
    for offset, directive in enumerate(directives):
        directive.rev_id = f"{first + offset:0{WIDTH}d}"
        if offset:  # a follow-up revision (the concurrent step) goes on top of the previous one
            directive.head = directives[offset - 1].rev_id
        if not directive.message:
            upgrade_ops = directive.upgrade_ops
            directive.message = describe(upgrade_ops.ops if upgrade_ops is not None else [])


NOTHING_TO_WRITE = (
    "pgkeel: autogenerate found no difference between the models and the database; no "
    "migration was written (use `alembic revision -m ...` without --autogenerate for a migration "
    "written by hand)."
)


def writes_revision_files(context: MigrationContext) -> bool:
    """Whether the revision being built is written to a file (``alembic check`` writes none)."""
    fn = context.opts.get("fn")
    from_check = getattr(fn, "__module__", "") == "alembic.command" and getattr(
        fn, "__qualname__", ""
    ).startswith("check.")
    return not from_check


def _autogenerates(context: MigrationContext) -> bool:
    command_args = getattr(context.opts.get("revision_context"), "command_args", {})
    return bool(command_args.get("autogenerate"))


def drop_empty_revisions(context: MigrationContext, directives: list[ops.MigrationScript]) -> None:
    """Write no file for an autogenerate run that found nothing, and say so on stdout.

    ``alembic check`` reads the (empty) revision Alembic builds, so it keeps it; a revision
    written without ``--autogenerate`` is meant to be empty and is kept too.
    """
    if not directives or not _autogenerates(context) or not writes_revision_files(context):
        return
    if all(upgrade.is_empty() for d in directives for upgrade in d.upgrade_ops_list):
        directives.clear()
        config = context.config
        if config is not None:
            config.print_stdout(NOTHING_TO_WRITE)
