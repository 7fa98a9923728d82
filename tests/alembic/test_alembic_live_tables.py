"""Changes to tables that already hold rows: each is made without a long lock, or refused.

Every case runs on the ``hardening`` example with rows in its tables: autogenerate, then the
generated files through ruff and squawk, ``alembic upgrade``, ``alembic check``, the offline
SQL through ``psql`` on a database of its own, and the downgrade.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic_project import Project, ruff_check, squawk
from sqlalchemy.exc import IntegrityError

from alembic_extensions import check
from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
ROWS = 500


def with_rows(project: Project) -> None:
    """The first revision applied, and rows in both tables."""
    project.revision("create accounts")
    project.upgrade()
    project.execute(
        "INSERT INTO accounts (email, code) SELECT 'a' || n || '@example.com', 'c' || n"
        f" FROM generate_series(1, {ROWS}) n;"
        "INSERT INTO orders (account_id, total) SELECT id, 3 FROM accounts"
    )


def relfilenode(project: Project, table: str) -> int:
    """The file the table's rows live in: a new one means PostgreSQL rewrote the table."""
    (node,) = project.query(f"SELECT relfilenode FROM pg_class WHERE relname = '{table}'")
    return int(node)


def upgrade_section(path: Path) -> str:
    """The ``upgrade()`` body of a migration file."""
    source = path.read_text()
    return source[source.index("def upgrade") : source.index("def downgrade")]


def assert_lints_clean(project: Project, *paths: Path) -> None:
    """The generated files pass ruff as they are, and squawk finds nothing in their SQL."""
    lint = ruff_check(*paths)
    assert lint.returncode == 0, lint.stdout
    status, report = squawk(project)
    assert status == 0, report


def write_steps(path: Path, upgrade: str, downgrade: str) -> None:
    """Give a revision written by hand its upgrade and downgrade bodies."""
    source = path.read_text()
    head = source[: source.index("def upgrade")]
    if "from alembic import op" not in head:
        head = head.replace("\nrevision: str", "\nfrom alembic import op\n\nrevision: str", 1)
    path.write_text(
        f"{head}def upgrade() -> None:\n    {upgrade}\n\n\n"
        f"def downgrade() -> None:\n    {downgrade}\n"
    )


def _psql() -> str:
    found = shutil.which("psql")
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
        assert candidates, "psql is needed to run the offline SQL"
        found = str(candidates[-1])
    return found


def assert_offline_sql_runs(project: Project, make_project: MakeProject) -> None:
    """``alembic upgrade head --sql`` runs in psql on an empty database and leaves no drift.

    Call it last: the new project's database becomes the one ``DATABASE_URL`` names.
    """
    script = project.offline_sql("head")
    fresh = make_project(project.example)
    fresh.use(project.module)
    for path in project.versions():
        shutil.copy(path, fresh.directory / "migrations" / "versions" / path.name)
    url = fresh.url.replace("postgresql+psycopg://", "postgresql://")
    result = subprocess.run(
        [_psql(), "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGOPTIONS": ""},
    )
    assert result.returncode == 0, result.stderr
    fresh.check()


def test_a_unique_rule_on_a_column_is_built_concurrently_then_attached(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_unique")
    (path,) = project.revisions("unique emails")
    upgrade = upgrade_section(path)
    build = (
        "op.create_index('uq_accounts_email', 'accounts', ['email'], unique=True,"
        " postgresql_concurrently=True, if_not_exists=True)"
    )
    attach = "op.create_unique_constraint_using_index('uq_accounts_email', 'accounts')"
    assert upgrade.index("autocommit_block") < upgrade.index(build) < upgrade.index(attach)
    assert "create_unique_constraint(" not in upgrade  # no ADD CONSTRAINT ... UNIQUE (col)
    assert_lints_clean(project, path)
    project.upgrade()
    project.check()
    with pytest.raises(IntegrityError, match="uq_accounts_email"):
        project.execute("INSERT INTO accounts (email, code) VALUES ('a1@example.com', 'x')")
    project.downgrade("0001")
    assert project.query("SELECT count(*) FROM pg_class WHERE relname = 'uq_accounts_email'") == [0]
    assert_offline_sql_runs(project, make_project)


def test_a_duplicate_stops_the_unique_rule_and_the_step_runs_again(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.execute("INSERT INTO accounts (email, code) VALUES ('a1@example.com', 'dup')")
    project.use("models_unique")
    project.revisions("unique emails")
    with pytest.raises(IntegrityError, match="could not create unique index"):
        project.upgrade()
    project.execute("DELETE FROM accounts WHERE code = 'dup'")
    project.upgrade()  # the invalid leftover of the failed build is dropped, then built again
    project.check()


def test_a_check_constraint_is_added_not_valid_then_validated(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_check")
    paths = project.revisions("orders total")
    assert [path.name for path in paths] == [
        "0002_orders_total.py",
        "0003_orders_total_concurrently.py",
    ]
    added, validated = (upgrade_section(path) for path in paths)
    assert (
        "op.create_check_constraint(op.f('chk_orders_total_not_negative'), 'orders',"
        " 'total >= 0', postgresql_not_valid=True)"
    ) in added
    assert "op.validate_constraint('chk_orders_total_not_negative', 'orders')" in validated
    assert_lints_clean(project, *paths)
    scripts = check.migration_sql(project.config())
    assert sorted(scripts) == ["0001_create_accounts.sql", *(f"{p.stem}.sql" for p in paths)]
    for script in scripts.values():  # every revision runs with the timeouts
        assert script.startswith(
            "\\set ON_ERROR_STOP on\n\nSET lock_timeout = '5s';\n\nSET statement_timeout = '1h';"
        )
    before = relfilenode(project, "orders")
    project.upgrade()
    assert relfilenode(project, "orders") == before
    project.check()
    valid = "SELECT convalidated FROM pg_constraint WHERE conname = 'chk_orders_total_not_negative'"
    assert project.query(valid) == [True]
    with pytest.raises(IntegrityError, match="chk_orders_total_not_negative"):
        project.execute("UPDATE orders SET total = -1")
    project.downgrade("0001")
    assert project.query(valid) == []
    assert_offline_sql_runs(project, make_project)


def test_a_changed_check_is_replaced_in_one_transaction(make_project: MakeProject) -> None:
    project = make_project("hardening")
    project.use("models_check")
    with_rows(project)
    project.use("models_check_v2")
    paths = project.revisions("orders total")
    replaced = upgrade_section(paths[0])
    drop = "op.drop_constraint(op.f('chk_orders_total_not_negative'), 'orders', type_='check')"
    add = "op.create_check_constraint(op.f('chk_orders_total_not_negative'), 'orders',"
    assert replaced.index(drop) < replaced.index(add)
    assert "postgresql_not_valid=True" in replaced
    assert_lints_clean(project, *paths)
    project.upgrade()
    project.check()
    with pytest.raises(IntegrityError, match="chk_orders_total_not_negative"):
        project.execute("UPDATE orders SET total = 0")
    project.downgrade("0001")
    for path in paths:
        path.unlink()
    project.use("models_check")
    project.check()  # the old expression is back


@pytest.mark.parametrize(
    ("module", "column", "what"),
    [
        ("models_volatile", "accounts.token", "the volatile default gen_random_uuid()"),
        ("models_volatile", "accounts.seen_at", "the volatile default clock_timestamp()"),
        ("models_generated", "accounts.email_lower", "a stored generated column"),
        ("models_identity", "accounts.number", "an identity column"),
    ],
)
def test_a_new_column_that_rewrites_the_table_is_refused(
    make_project: MakeProject, module: str, column: str, what: str
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use(module)
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("new column")
    violation = next(v for v in raised.value.violations if v.where == column)
    assert violation.rule == "add-column-rewrite"
    assert what in violation.problem
    assert "ACCESS EXCLUSIVE" in violation.problem
    assert "backfill the old rows in batches" in violation.fix
    assert f"-x acknowledge={column}" in violation.opt_out
    assert len(project.versions()) == 1


def test_constant_and_stable_defaults_are_added_without_a_rewrite(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_volatile")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("new columns")
    refused = {v.where for v in raised.value.violations}
    assert refused == {"accounts.token", "accounts.seen_at"}  # not now(), not 1


def test_an_acknowledged_rewriting_column_is_written_and_squawk_is_told(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_volatile")
    (path,) = project.revisions("new columns", "acknowledge=accounts.token,accounts.seen_at")
    upgrade = upgrade_section(path)
    acknowledged = "op.acknowledge(\n        'add-column-rewrite',\n        'accounts.token',"
    add = "op.add_column('accounts', sa.Column('token'"
    assert upgrade.index(acknowledged) < upgrade.index(add)
    assert_lints_clean(project, path)
    before = relfilenode(project, "accounts")
    project.upgrade()
    assert relfilenode(project, "accounts") != before  # the rewrite that was acknowledged
    assert project.query("SELECT count(DISTINCT token) FROM accounts") == [ROWS]
    project.check()
    project.downgrade("0001")
    assert_offline_sql_runs(project, make_project)


def block_section(upgrade: str) -> str:
    """The autocommit block of an ``upgrade()`` body (its indented lines)."""
    start = upgrade.index("with op.get_context().autocommit_block():")
    lines = upgrade[start:].splitlines()[1:]
    return "\n".join(line for line in lines if line.startswith("        "))


def test_a_new_index_is_built_before_the_one_it_replaces_goes(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_fkindex")  # a wider index now covers the foreign key
    (path,) = project.revisions("wider index")
    block = block_section(upgrade_section(path))
    build = "op.create_index('idx_orders_account_id_total', 'orders', ['account_id', 'total'],"
    drop = "op.drop_index(op.f('idx_orders_account_id'), table_name='orders',"
    assert block.index(build) < block.index(drop)  # the foreign key is never without an index
    assert_lints_clean(project, path)
    project.upgrade()
    project.check()
    project.downgrade("0001")
    project.use("models")
    path.unlink()
    project.check()
    assert_offline_sql_runs(project, make_project)


def test_a_renamed_index_is_built_before_the_old_one_goes(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_renameindex")
    (path,) = project.revisions("rename index")
    block = block_section(upgrade_section(path))
    build = "op.create_index('idx_orders_amount', 'orders', ['total'],"
    drop = "op.drop_index(op.f('idx_orders_total'), table_name='orders',"
    assert block.index(build) < block.index(drop)
    assert "postgresql_concurrently=True" in block
    assert_lints_clean(project, path)
    project.upgrade()
    project.check()
    project.downgrade("0001")
    assert_offline_sql_runs(project, make_project)


def test_an_index_with_new_columns_is_built_beside_the_old_one(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_indexcolumns")
    (path,) = project.revisions("wider total index")
    upgrade = upgrade_section(path)
    block = block_section(upgrade)
    build = "op.create_index('idx_orders_total_new', 'orders', ['total', 'account_id'],"
    drop = "op.drop_index(op.f('idx_orders_total'), table_name='orders',"
    assert block.index(build) < block.index(drop)
    assert upgrade.index(drop) < upgrade.index("op.rename_index('idx_orders_total_new',")
    assert_lints_clean(project, path)
    project.upgrade()
    project.check()
    columns = "SELECT indkey::text FROM pg_index WHERE indexrelid = 'idx_orders_total'::regclass"
    assert len(project.query(columns)[0].split()) == 2
    project.downgrade("0001")
    assert len(project.query(columns)[0].split()) == 1
    assert project.query("SELECT to_regclass('idx_orders_total_new')::text") == [None]
    assert_offline_sql_runs(project, make_project)


def test_a_dropped_index_goes_concurrently(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_dropindex")
    (path,) = project.revisions("no total index")
    assert (
        "op.drop_index(op.f('idx_orders_total'), table_name='orders',"
        " postgresql_concurrently=True, if_exists=True)"
    ) in block_section(upgrade_section(path))
    assert_lints_clean(project, path)
    project.upgrade()
    project.check()
    project.downgrade("0001")
    assert_offline_sql_runs(project, make_project)


def test_a_changed_on_delete_replaces_the_key_in_one_transaction(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_ondelete")
    replaced, validated = project.revisions("cascade orders")
    upgrade = upgrade_section(replaced)
    acknowledged = "'constraint-replaced',\n        'orders.fk_orders_account_id',"
    drop = "op.drop_constraint(op.f('fk_orders_account_id'), 'orders', type_='foreignkey')"
    add = "ondelete='CASCADE', postgresql_not_valid=True)"
    assert upgrade.index(acknowledged) < upgrade.index(drop) < upgrade.index(add)
    assert "op.validate_constraint('fk_orders_account_id', 'orders')" in validated.read_text()
    assert_lints_clean(project, replaced, validated)
    project.upgrade()
    project.check()
    project.execute("DELETE FROM accounts")
    assert project.query("SELECT count(*) FROM orders") == [0]  # ON DELETE CASCADE holds
    project.downgrade("0001")
    assert_offline_sql_runs(project, make_project)


def test_defaults_comments_jsonb_and_arrays_leave_no_drift(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_defaults")
    (path,) = project.revisions("settings and tags")
    assert_lints_clean(project, path)
    before = relfilenode(project, "accounts")
    project.upgrade()
    assert relfilenode(project, "accounts") == before  # constant defaults: no rewrite
    project.check()
    assert project.query("SELECT DISTINCT settings::text || tags::text FROM accounts") == ["{}{}"]
    project.downgrade("0001")
    assert_offline_sql_runs(project, make_project)


def test_a_server_default_on_an_existing_column_is_migrated(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_default")
    (path,) = project.revisions("code default")
    assert "server_default='none'," in upgrade_section(path)
    assert_lints_clean(project, path)
    project.upgrade()
    project.check()
    project.execute("INSERT INTO accounts (email) VALUES ('new@example.com')")
    assert project.query("SELECT code FROM accounts WHERE email = 'new@example.com'") == ["none"]
    project.downgrade("0001")
    project.use("models")
    path.unlink()
    project.check()


def test_a_shorter_varchar_is_refused_even_when_the_data_fits(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_shrink")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("short codes")
    (violation,) = raised.value.violations
    assert (violation.rule, violation.where) == ("table-rewrite", "accounts.code")


def test_a_model_moved_to_another_schema_is_refused_with_set_schema(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.execute("CREATE SCHEMA sales")
    project.use("models_schema")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("orders in sales")
    (violation,) = raised.value.violations
    assert violation.where == "orders"
    assert 'op.execute(\'ALTER TABLE "orders" SET SCHEMA "sales"\')' in violation.fix
    assert "rename_table('orders', 'orders')" not in violation.fix
    assert project.query("SELECT count(*) FROM orders") == [ROWS]


def test_names_longer_than_63_bytes_are_fitted_on_a_table_with_rows(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_long")
    paths = project.revisions("adjustments")
    assert_lints_clean(project, *paths)
    project.upgrade()
    project.check()
    names = project.query(
        "SELECT relname FROM pg_class WHERE relname LIKE '%accounting_period%'"
        " UNION ALL SELECT conname FROM pg_constraint WHERE conname LIKE '%accounting_period%'"
    )
    assert names
    assert all(len(name.encode()) <= 63 for name in names)
    project.downgrade("0001")
    assert_offline_sql_runs(project, make_project)


def test_reserved_words_as_table_and_column_names(make_project: MakeProject) -> None:
    project = make_project("reserved")
    project.revision("create user")
    project.upgrade()
    project.execute(
        'INSERT INTO "group" ("select") SELECT \'g\' || n FROM generate_series(1, 50) n;'
        'INSERT INTO "user" ("order", "check") SELECT n, \'c\' FROM generate_series(1, 50) n'
    )
    project.use("models_v2")
    paths = project.revisions("user groups")
    assert_lints_clean(project, *paths)
    project.upgrade()
    project.check()
    with pytest.raises(IntegrityError, match="chk_user_order"):
        project.execute('UPDATE "user" SET "order" = -1')
    project.downgrade("0001")
    assert_offline_sql_runs(project, make_project)


def test_a_changed_primary_key_is_refused_with_the_recipe(make_project: MakeProject) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_pk")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("orders by account")
    (violation,) = raised.value.violations
    assert (violation.rule, violation.where) == ("primary-key-change", "orders")
    assert "(id, account_id)" in violation.problem
    assert "PRIMARY KEY USING INDEX" in violation.fix
    (path,) = project.revisions("orders by account", "acknowledge=orders")
    upgrade = upgrade_section(path)
    drop = "op.drop_constraint(op.f('pk_orders'), 'orders', type_='primary')"
    add = "op.create_primary_key(op.f('pk_orders'), 'orders', ['id', 'account_id'])"
    assert upgrade.index("'primary-key-change'") < upgrade.index(drop) < upgrade.index(add)
    project.upgrade()
    project.check()
    key = "SELECT array_length(conkey, 1) FROM pg_constraint WHERE conname = 'pk_orders'"
    assert project.query(key) == [2]
    project.downgrade("0001")
    assert project.query(key) == [1]


def test_a_column_that_becomes_generated_is_refused_and_is_drift(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_to_generated")
    with (
        pytest.warns(UserWarning, match="Computed default on accounts.nickname"),  # Alembic's
        pytest.raises(UnsafeMigrationError) as raised,
    ):
        project.revisions("generated nickname")
    (violation,) = raised.value.violations
    assert (violation.rule, violation.where) == ("generated-column", "accounts.nickname")
    assert "becomes generated" in violation.problem
    with (
        pytest.warns(UserWarning, match="Computed default"),
        pytest.raises(UnsafeMigrationError, match="generated-column"),
    ):
        project.check()  # not silent: the database differs from the model


def test_a_column_that_becomes_an_identity_is_refused_unless_acknowledged(
    make_project: MakeProject,
) -> None:
    project = make_project("hardening")
    with_rows(project)
    project.use("models_to_identity")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("numbered orders")
    (violation,) = raised.value.violations
    assert (violation.rule, violation.where) == ("generated-column", "orders.total")
    assert "setval(pg_get_serial_sequence('<table>', '<column>')" in violation.fix
    (path,) = project.revisions("numbered orders", "acknowledge=orders.total")
    assert "'generated-column',\n        'orders.total'," in upgrade_section(path)
    project.upgrade()
    project.check()
    project.downgrade("0001")


@pytest.mark.parametrize("version", ["models_options", "models_plain"])
def test_an_identity_changed_or_dropped_runs_both_ways(
    make_project: MakeProject, version: str
) -> None:
    """Alembic wrote ADD GENERATED for new options and DROP DEFAULT for none: both refused."""
    project = make_project("identities")
    project.revision("create tickets")
    project.upgrade()
    project.execute("INSERT INTO tickets DEFAULT VALUES; INSERT INTO tickets DEFAULT VALUES")
    project.use(version)
    (path,) = project.revisions("numbers")
    source = path.read_text()
    assert "existing_server_default=sa.Identity(" in source
    project.upgrade()
    project.check()
    project.execute(
        "INSERT INTO tickets (seq) VALUES (7)"
        if version == "models_plain"
        else "INSERT INTO tickets DEFAULT VALUES"
    )
    # SET START WITH keeps the sequence where it is (RESTART moves it): 2, then 12 by tens.
    expected = [1, 2, 7] if version == "models_plain" else [1, 2, 12]
    assert project.query("SELECT seq FROM tickets") == expected
    project.execute("DELETE FROM tickets WHERE seq > 2")
    project.downgrade("0001")
    project.execute("INSERT INTO tickets DEFAULT VALUES")
    assert len(project.query("SELECT seq FROM tickets")) == 3
