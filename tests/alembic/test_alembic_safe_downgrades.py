"""Downgrades of safe upgrades are safe too: a type change back, NOT NULL again, a column back.

The reverse of a safe upgrade is judged like an upgrade: a type change back that rewrites the
table is refused until answered, a column made nullable becomes NOT NULL again by the NOT NULL
steps (with a value for its NULLs), and a dropped NOT NULL column whose values are gone comes
back nullable. The opt-out of ``not-null-default`` holds only for an empty table.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.util import CommandError
from alembic_project import Project, ruff_check
from sqlalchemy import exc

from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
ROWS = (
    "INSERT INTO accounts (email, code) SELECT 'a' || n || '@x', 'c' || n"
    " FROM generate_series(1, 50) n"
)
COLUMN = (
    "SELECT format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' NOT NULL'"
    " ELSE '' END FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = '{column}'"
)
FILE = "SELECT relfilenode FROM pg_class WHERE relname = 'accounts'"
NOT_NULL_CHECKS = "SELECT conname FROM pg_constraint WHERE conname LIKE 'chk_%_not_null'"


def _accounts(make_project: MakeProject, *, rows: bool = True) -> Project:
    """The example upgraded to its first revision, with 50 accounts."""
    project = make_project("safe_downgrades")
    project.revision("create accounts")
    project.upgrade()
    if rows:
        project.execute(ROWS)
    return project


def _column(project: Project, column: str, table: str = "accounts") -> list[str]:
    return project.query(COLUMN.format(table=table, column=column))


def _downgrade_section(path: object) -> str:
    source = str(getattr(path, "read_text", lambda: path)())
    return source[source.index("def downgrade") :]


def _refused(project: Project, *x: str) -> dict[str, object]:
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("change", *x)
    assert len(project.versions()) == 1
    return {f"{v.rule} {v.where}": v for v in raised.value.violations}


# --- a type change back ----------------------------------------------------------------------


def test_the_downgrade_of_a_wider_type_keeps_it_and_says_why(make_project: MakeProject) -> None:
    """Widening is accepted as it is; narrowing back would rewrite: the downgrade keeps the type."""
    project = _accounts(make_project)
    project.use("models_wider")
    (path,) = project.revisions("wider codes")
    downgrade = _downgrade_section(path)
    assert "# pgkeel: accounts.code keeps VARCHAR(100) on this downgrade" in downgrade
    assert "rewrites the table" in downgrade
    assert "acknowledge=accounts.code" in downgrade  # how to change it back all the same
    assert "op.alter_column" not in downgrade
    project.upgrade()
    project.execute("INSERT INTO accounts (email, code) VALUES ('long@x', repeat('x', 80))")
    node = project.query(FILE)
    project.downgrade("0001")
    assert project.query(FILE) == node  # nothing rewritten
    assert project.query("SELECT count(*) FROM accounts WHERE length(code) = 80") == [1]


def test_the_downgrade_keeps_the_wider_type_when_asked(make_project: MakeProject) -> None:
    project = _accounts(make_project)
    project.use("models_wider")
    (path,) = project.revisions("wider codes", "downgrade_keep_type=accounts.code")
    downgrade = _downgrade_section(path)
    assert "# pgkeel: accounts.code keeps VARCHAR(100) on this downgrade" in downgrade
    assert "op.alter_column" not in downgrade
    lint = ruff_check(path)
    assert lint.returncode == 0, lint.stdout
    project.upgrade()
    project.execute("INSERT INTO accounts (email, code) VALUES ('long@x', repeat('x', 80))")
    node = project.query(FILE)
    project.downgrade("0001")
    assert project.query(FILE) == node  # nothing rewritten
    assert _column(project, "code") == ["character varying(100) NOT NULL"]
    assert project.query("SELECT count(*) FROM accounts WHERE length(code) = 80") == [1]
    project.upgrade()
    project.check()


def test_an_acknowledged_type_change_back_is_written_acknowledged(
    make_project: MakeProject,
) -> None:
    project = _accounts(make_project)
    project.use("models_wider")
    (path,) = project.revisions("wider codes", "acknowledge=accounts.code")
    downgrade = _downgrade_section(path)
    acknowledged = downgrade.index("'table-rewrite',\n        'accounts.code',")
    assert "reason='downgrade: VARCHAR(100) to character varying(50) rewrites" in downgrade
    assert acknowledged < downgrade.index("type_=sa.VARCHAR(length=50)")
    project.upgrade()
    project.downgrade("0001")
    assert _column(project, "code") == ["character varying(50) NOT NULL"]


# --- NOT NULL again ---------------------------------------------------------------------------


def test_the_downgrade_backfills_the_nulls_then_runs_the_not_null_steps(
    make_project: MakeProject,
) -> None:
    project = _accounts(make_project)
    project.use("models_optional")
    (path,) = project.revisions("optional codes", "downgrade_backfill=accounts.code='none'")
    downgrade = _downgrade_section(path)
    steps = [
        "op.backfill('accounts', {'code': \"'none'\"}, where='code IS NULL')",
        "op.add_not_null_check('accounts', 'code')",
        "op.validate_constraint('chk_accounts_code_not_null', 'accounts')",
        "op.set_not_null('accounts', 'code')",
    ]
    assert [downgrade.index(step) for step in steps] == sorted(
        downgrade.index(step) for step in steps
    )
    assert "nullable=False" not in downgrade  # no plain SET NOT NULL
    project.upgrade()
    assert _column(project, "code") == ["character varying(50)"]
    project.execute("INSERT INTO accounts (email) VALUES ('no-code@x')")
    node = project.query(FILE)
    project.downgrade("0001")
    assert _column(project, "code") == ["character varying(50) NOT NULL"]
    assert project.query("SELECT code FROM accounts WHERE email = 'no-code@x'") == ["none"]
    assert project.query(FILE) == node
    assert project.query(NOT_NULL_CHECKS) == []
    project.upgrade()
    project.check()


@pytest.mark.parametrize("answer", [(), ("acknowledge=accounts.code",)], ids=["none", "ack"])
def test_a_not_null_downgrade_stops_on_a_null_before_it_changes_anything(
    make_project: MakeProject, answer: tuple[str, ...]
) -> None:
    """A column made nullable is accepted; its downgrade's steps stop on a NULL, then run again."""
    project = _accounts(make_project)
    project.use("models_optional")
    (path,) = project.revisions("optional codes", *answer)
    downgrade = _downgrade_section(path)
    assert "# pgkeel: accounts.code becomes NOT NULL again with no value" in downgrade
    assert "op.backfill" not in downgrade
    assert "op.set_not_null('accounts', 'code')" in downgrade
    project.upgrade()
    project.execute("INSERT INTO accounts (email) VALUES ('no-code@x')")
    with pytest.raises(exc.IntegrityError, match="chk_accounts_code_not_null"):
        project.downgrade("0001")
    assert project.query("SELECT version_num FROM alembic_version") == ["0002"]
    assert _column(project, "code") == ["character varying(50)"]
    project.execute("UPDATE accounts SET code = 'given' WHERE code IS NULL")
    project.downgrade("0001")  # runs again
    assert _column(project, "code") == ["character varying(50) NOT NULL"]
    assert project.query(NOT_NULL_CHECKS) == []


def test_a_downgrade_answer_about_nothing_is_an_error(make_project: MakeProject) -> None:
    project = _accounts(make_project)
    project.use("models_optional")
    with pytest.raises(CommandError, match=r"downgrade_keep_type=accounts\.email"):
        project.revisions(
            "optional codes", "acknowledge=accounts.code", "downgrade_keep_type=accounts.email"
        )


# --- a dropped column back ---------------------------------------------------------------------


def test_a_dropped_not_null_column_comes_back_nullable(make_project: MakeProject) -> None:
    project = _accounts(make_project)
    project.use("models_dropped")
    (path,) = project.revisions("no codes", "acknowledge=accounts.code,accounts.level")
    downgrade = _downgrade_section(path)
    assert "# pgkeel: accounts.code comes back nullable: the upgrade dropped its values" in (
        downgrade
    )
    assert "sa.Column('code', sa.VARCHAR(length=50), autoincrement=False, nullable=True)" in (
        downgrade
    )
    lint = ruff_check(path)
    assert lint.returncode == 0, lint.stdout
    project.upgrade()
    project.downgrade("0001")
    assert _column(project, "code") == ["character varying(50)"]
    assert _column(project, "level") == ["text NOT NULL"]  # its default fills it
    assert project.query("SELECT count(*) FROM accounts WHERE code IS NULL") == [50]
    assert project.query("SELECT DISTINCT level FROM accounts") == ["basic"]


def test_tenant_id_comes_back_nullable_when_tenant_mixin_is_removed(
    make_project: MakeProject,
) -> None:
    project = make_project("safe_downgrades")
    project.use("models_tenants")
    project.revision("create tables")
    project.upgrade()
    project.execute("INSERT INTO tenants (name) VALUES ('t1')")
    project.execute("INSERT INTO notes (body, tenant_id) SELECT 'note', id FROM tenants")
    project.use("models_untenanted")
    paths = project.revisions("notes for everyone", "acknowledge=notes.tenant_id")
    downgrades = "".join(_downgrade_section(path) for path in paths)
    assert "# pgkeel: notes.tenant_id comes back nullable" in downgrades
    project.upgrade()
    project.downgrade("0001")  # the note stays, without a tenant
    assert _column(project, "tenant_id", "notes") == ["uuid"]
    assert project.query("SELECT count(*) FROM notes WHERE tenant_id IS NULL") == [1]


# --- the opt-out of not-null-default is for an empty table -------------------------------------


def test_the_not_null_opt_out_holds_only_on_an_empty_table(make_project: MakeProject) -> None:
    project = _accounts(make_project)
    project.use("models_region")
    violations = _refused(project)
    assert list(violations) == ["not-null-default accounts.region"]
    message = str(violations["not-null-default accounts.region"])
    assert "allow('not-null-default'), which is for a table known to be empty" in message
    assert "but accounts holds rows" in message
    assert "none while accounts holds rows" in message
    project.execute("DELETE FROM accounts")
    project.revisions("regions")
    project.upgrade()
    assert _column(project, "region") == ["text NOT NULL"]
