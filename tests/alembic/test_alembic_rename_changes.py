"""``-x rename=`` keeps the pair's other changes; a type change a view blocks is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project

from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
ROWS = (
    "INSERT INTO accounts (email, code, note)"
    " SELECT 'a' || n || '@x', n::text, CASE WHEN mod(n, 2) = 0 THEN 'x' END"
    " FROM generate_series(1, 40) n"
)
COLUMNS = (
    "SELECT attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull"
    " THEN ' NOT NULL' ELSE '' END || coalesce(' DEFAULT ' || pg_get_expr(adbin, adrelid), '')"
    " FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum"
    " WHERE attrelid = 'accounts'::regclass AND attname IN ({})"
)


def created(make_project: MakeProject) -> Project:
    """The accounts example, upgraded, with rows."""
    project = make_project("rename_changes")
    project.revision("create accounts")
    project.upgrade()
    project.execute(ROWS)
    return project


def columns(project: Project, *names: str) -> list[str]:
    """Each named column of accounts: its name, type, NOT NULL and default."""
    return project.query(COLUMNS.format(", ".join(f"'{name}'" for name in names)))


def upgrade_section(path: object) -> str:
    """The ``upgrade()`` body of a migration file."""
    source = str(getattr(path, "read_text", lambda: path)())
    return source[: source.index("def downgrade")]


def test_a_renamed_column_made_shorter_is_refused_as_a_rewrite(make_project: MakeProject) -> None:
    project = created(make_project)
    project.use("models_shorter")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("short refs", "rename=accounts.code:ref")
    message = str(refused.value)
    assert (
        "[table-rewrite] accounts.ref: changing accounts.ref from character varying(50)" in message
    )
    (path,) = project.revisions(
        "short refs", "rename=accounts.code:ref", "acknowledge=accounts.ref"
    )
    upgrade = upgrade_section(path)
    rename = upgrade.index("new_column_name='ref'")
    assert "existing_type=sa.VARCHAR(length=50)" in upgrade[rename - 200 : rename + 200]
    assert rename < upgrade.index("'table-rewrite',\n        'accounts.ref'")
    assert rename < upgrade.index("type_=sa.String(length=2)")
    project.upgrade()
    assert columns(project, "code", "ref") == ["ref character varying(2) NOT NULL"]
    project.check()
    project.downgrade("0001")
    assert columns(project, "code", "ref") == ["code character varying(50) NOT NULL"]
    assert project.query("SELECT count(*) FROM accounts WHERE code ~ '^[0-9]+$'") == [40]


def test_a_renamed_column_made_text_changes_type_without_a_rewrite(
    make_project: MakeProject,
) -> None:
    project = created(make_project)
    project.use("models_longer")
    # Acknowledged: the downgrade changes text back to varchar(50), a rewrite.
    (path,) = project.revisions("text refs", "rename=accounts.code:ref", "acknowledge=accounts.ref")
    upgrade = upgrade_section(path)
    assert upgrade.index("new_column_name='ref'") < upgrade.index("type_=sa.Text()")
    assert (
        "'type-change',\n        'accounts.ref',\n        reason='character varying(50) to TEXT"
        in upgrade
    )
    (node,) = project.query("SELECT relfilenode FROM pg_class WHERE relname = 'accounts'")
    project.upgrade()
    assert columns(project, "code", "ref") == ["ref text NOT NULL"]
    assert project.query("SELECT relfilenode FROM pg_class WHERE relname = 'accounts'") == [node]
    project.check()
    project.downgrade("0001")
    assert columns(project, "code", "ref") == ["code character varying(50) NOT NULL"]


def test_a_renamed_column_made_required_gets_the_not_null_steps(
    make_project: MakeProject,
) -> None:
    project = created(make_project)
    project.use("models_required")
    paths = project.revisions(
        "remarks", "rename=accounts.note:remark", "backfill=accounts.remark='none'"
    )
    sources = "".join(upgrade_section(path) for path in paths)
    assert sources.index("new_column_name='remark'") < sources.index("op.backfill(")
    assert "op.add_not_null_check('accounts', 'remark')" in sources
    assert "op.set_not_null('accounts', 'remark')" in sources
    project.upgrade()
    assert columns(project, "note", "remark") == ["remark text NOT NULL"]
    assert project.query("SELECT count(*) FROM accounts WHERE remark = 'none'") == [20]
    project.check()
    project.downgrade("0001")
    assert columns(project, "note", "remark") == ["note text"]


def test_a_renamed_column_keeps_its_new_server_default(make_project: MakeProject) -> None:
    project = created(make_project)
    project.use("models_default")
    (path,) = project.revisions("tags", "rename=accounts.label:tag")
    upgrade = upgrade_section(path)
    assert upgrade.index("new_column_name='tag'") < upgrade.index("server_default='unset'")
    project.upgrade()
    assert columns(project, "label", "tag") == [
        "tag character varying(20) NOT NULL DEFAULT 'unset'::character varying"
    ]
    project.check()
    project.downgrade("0001")
    assert columns(project, "label", "tag") == [
        "label character varying(20) NOT NULL DEFAULT 'none'::character varying"
    ]


# --- a type change that a view, a rule or a policy blocks ----------------------------------


@pytest.mark.parametrize(
    ("reader", "named"),
    [
        ("CREATE VIEW account_codes AS SELECT id, code FROM accounts", "view account_codes"),
        (
            "CREATE MATERIALIZED VIEW account_codes AS SELECT id, code FROM accounts",
            "materialized view account_codes",
        ),
        (
            (
                "CREATE RULE no_blank_codes AS ON UPDATE TO accounts WHERE new.code = ''"
                " DO INSTEAD NOTHING"
            ),
            "rule no_blank_codes on accounts",
        ),
        (
            "CREATE POLICY own_codes ON accounts USING (code <> '')",
            "policy own_codes",
        ),
    ],
)
def test_a_type_change_on_a_column_something_reads_is_refused(
    make_project: MakeProject, reader: str, named: str
) -> None:
    project = created(make_project)
    project.execute(reader)
    project.use("models_text")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("text codes")
    message = str(refused.value)
    assert "[table-rewrite] accounts.code: changing accounts.code from" in message
    assert f"{named} reads the column" in message
    assert f"drop {named} before the alter_column" in message
    (path,) = project.revisions("text codes", "acknowledge=accounts.code")
    assert f"drops and creates again {named}: acknowledged" in upgrade_section(path)


def test_a_renamed_column_a_view_reads_is_refused_under_its_new_name(
    make_project: MakeProject,
) -> None:
    project = created(make_project)
    project.execute("CREATE VIEW account_codes AS SELECT id, code FROM accounts")
    project.use("models_longer")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("text refs", "rename=accounts.code:ref")
    assert "view account_codes reads the column" in str(refused.value)
    assert "-x acknowledge=accounts.ref" in str(refused.value)
