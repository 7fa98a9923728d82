"""What ``run_migrations`` does on every run stays cheap, and still refuses what it refused.

A no-op ``alembic check`` runs the environment's own work each time: the keywords passed to
``run_migrations``, the models' ``pgkeel_migrate`` marks, the ``-x`` answers, the timeouts and
the one catalog statement. These tests pin the results of that work where it was made cheaper:
the same refusals, the same statement, and modules left unloaded when nothing needs them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError
from alembic_project import Project
from psycopg import sql

from alembic_extensions.catalog import _body
from alembic_extensions.environment import (
    MIGRATE_INFO_KEY,
    MigrationOptions,
    _include_object,
    _marks_any,
    check_configure_options,
)
from alembic_extensions.timeouts import TimeoutGuard, Timeouts
from pgkeel.dbobjects import read_marker
from pgkeel.errors import SettingsError

MakeProject = Callable[[str], Project]

CHECK_IN_A_FRESH_PROCESS = """\
import sys

sys.path.insert(0, {tests!r})
from alembic import command
from alembic.config import Config

from alembic_project import load_models

load_models("tenancy")
command.check(Config({ini!r}))
print("alembic_extensions.acknowledge" in sys.modules)
"""


def test_a_no_op_check_without_x_arguments_does_not_import_acknowledge(
    make_project: MakeProject,
) -> None:
    """``-x`` answers are read only when there are some, or operations to rewrite."""
    project = make_project("tenancy")
    project.revision("create invoices")
    project.upgrade()
    script = CHECK_IN_A_FRESH_PROCESS.format(
        tests=str(Path(__file__).parent), ini=str(project.directory / "alembic.ini")
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("rename=orders.name", "expected table.old_column:new_column"),
        ("backfill=orders", "expected table.column=<SQL giving each old row its value>"),
        ("downgrade_backfill=orders.note=", "expected table.column=<SQL giving each old row"),
    ],
)
def test_a_no_op_check_still_refuses_a_malformed_x_argument(
    make_project: MakeProject, argument: str, message: str
) -> None:
    project = make_project("tenancy")
    project.revision("create invoices")
    project.upgrade()
    with pytest.raises(CommandError, match=message):
        command.check(project.config(argument))


def test_a_no_op_check_accepts_well_formed_x_arguments(make_project: MakeProject) -> None:
    project = make_project("tenancy")
    project.revision("create invoices")
    project.upgrade()
    config = project.config(
        "acknowledge=orders.note", "rename=orders.name:full_name", "downgrade_keep_type=a.b"
    )
    command.check(config)  # nothing to rewrite, nothing refused


def test_no_keyword_passes_the_check_of_configure_options() -> None:
    check_configure_options({})


def test_configure_keywords_are_checked_the_same_each_time() -> None:
    for _ in range(2):  # the names are read once per process: the second call uses them
        check_configure_options({"version_table": "versions", "compare_type": False})
        with pytest.raises(SettingsError, match="Did you mean 'compare_type'"):
            check_configure_options({"compare_typ": True})
        with pytest.raises(SettingsError, match="pgkeel sets it itself"):
            check_configure_options({"target_metadata": None})
        with pytest.raises(SettingsError, match="it is not a setting"):
            check_configure_options({"self": None})


def _books(**constraint_info: Any) -> sa.MetaData:
    """A table whose check constraint carries ``constraint_info`` as its ``info``."""
    metadata = sa.MetaData()
    sa.Table(
        "books",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pages", sa.Integer),
        sa.CheckConstraint("pages > 0", name="ck_books_pages", **constraint_info),
    )
    return metadata


def test_a_marked_constraint_is_found_among_the_items() -> None:
    metadata = _books(info={MIGRATE_INFO_KEY: False})
    assert _marks_any(metadata)
    assert _marks_any([sa.MetaData(), metadata])
    assert _include_object(MigrationOptions(), metadata) is not None


@pytest.mark.parametrize(
    "info",
    [{}, {MIGRATE_INFO_KEY: True}, {MIGRATE_INFO_KEY: None}, {"other": False}],
)
def test_an_info_that_does_not_say_false_marks_nothing(info: dict[str, Any]) -> None:
    metadata = _books(info=info)
    table = metadata.tables["books"]
    table.info.update(info)
    table.c.pages.info.update(info)
    assert not _marks_any(metadata)
    assert _include_object(MigrationOptions(), metadata) is None


def test_reading_the_marks_creates_no_info() -> None:
    metadata = _books()
    table = metadata.tables["books"]
    assert not _marks_any(metadata)
    items = [table, *table.columns, *table.constraints, *table.indexes]
    assert all("info" not in vars(item) for item in items)


@pytest.mark.parametrize("settings", [Timeouts(), Timeouts(None, None), Timeouts("1s", None)])
def test_the_timeouts_statement_is_the_composed_one(settings: Timeouts) -> None:
    count = len(settings.settings())
    calls = sql.SQL(", ").join(sql.SQL("set_config(%s, %s, %s)") for _ in range(count))
    guard = TimeoutGuard(None, settings)  # type: ignore[arg-type]  # the statement needs none
    assert guard.statement == sql.SQL("SELECT {}").format(calls).as_string()


@pytest.mark.parametrize(
    ("source", "body"),
    [
        ("\nBEGIN\nRETURN NEW;\nEND;\n", "RETURN NEW;"),
        ("\nBEGIN\nA;\nEND;\nB;\nEND;\n", "A;\nEND;\nB;"),  # the last END
        ("\nBEGIN\nRETURN NEW;\nEND;\n\n", "RETURN NEW;"),  # $ before a final newline
        ("\nBEGIN\nEND;\n", "\nBEGIN\nEND;\n"),  # no body line: as stored
        ("BEGIN\nRETURN NEW;\nEND;\n", "BEGIN\nRETURN NEW;\nEND;\n"),  # not pgkeel's layout
    ],
)
def test_a_functions_body_is_read_from_its_stored_source(source: str, body: str) -> None:
    assert _body(source) == body


@pytest.mark.parametrize(
    ("comment", "fingerprint"),
    [
        ("pgkeel:0123abcd", "0123abcd"),
        ('pgkeel:0123abcd {"using": "true"}', "0123abcd"),
        ("pgkeel:0123abcdg", None),  # not followed by a word boundary
        ("pgkeel:", None),
        (" pgkeel:0123", None),
        ("written by hand", None),
        (None, None),
    ],
)
def test_a_pgkeel_comment_gives_its_fingerprint(
    comment: str | None, fingerprint: str | None
) -> None:
    assert read_marker(comment) == fingerprint
