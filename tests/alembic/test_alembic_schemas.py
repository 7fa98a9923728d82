"""Models in other schemas, under the one-line env.py: compared, checked and guarded.

``run_migrations`` compares the default schema and the schemas the models name, and leaves
every other schema of the database alone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project

from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
ROWS = 300
SALES_TABLES = """
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'sales' AND c.relkind = 'r'
"""


def _created(make_project: MakeProject) -> Project:
    """The schemas example, migrated to its first version, with rows in sales.orders."""
    project = make_project("schemas")
    project.execute("CREATE SCHEMA sales")
    source = project.revision("create orders").read_text()
    assert "schema='sales'" in source
    project.upgrade()
    project.execute(
        "INSERT INTO tenants (name) VALUES ('a');"
        "INSERT INTO sales.orders (tenant_id, number, note)"
        f" SELECT id, 'n' || n, 'note' FROM tenants, generate_series(1, {ROWS}) n"
    )
    return project


def test_a_model_in_another_schema_migrates_and_checks_clean(make_project: MakeProject) -> None:
    project = _created(make_project)
    project.check()
    assert project.revisions("nothing to do") == []  # no create_table('orders') a second time
    triggers = "SELECT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
    assert project.query(triggers) == ["sales.orders", "sales.orders", "tenants"]
    policies = "SELECT polrelid::regclass::text FROM pg_policy"
    assert project.query(policies) == ["sales.orders"]
    project.downgrade()
    assert project.query(SALES_TABLES) == []
    assert project.leftovers() == {}


def test_the_safety_rules_guard_a_table_in_another_schema(make_project: MakeProject) -> None:
    project = _created(make_project)
    project.use("models_v2")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("shorter notes")
    found = sorted((v.rule, v.where) for v in refused.value.violations)
    assert found == [
        ("drop-unique", "sales.orders.uq_orders_tenant_id_number"),
        ("table-rewrite", "sales.orders.note"),
    ]
    assert project.query("SELECT count(*) FROM sales.orders") == [ROWS]


def test_schemas_the_models_do_not_name_are_left_alone(make_project: MakeProject) -> None:
    project = make_project("schemas")
    project.execute(
        "CREATE SCHEMA sales; CREATE SCHEMA billing;"
        "CREATE TABLE billing.invoices (id int PRIMARY KEY, total numeric);"
        "INSERT INTO billing.invoices VALUES (1, 10)"
    )
    source = project.revision("create orders").read_text()
    assert "invoices" not in source
    assert "billing" not in source
    project.upgrade()
    project.check()
    assert project.query("SELECT count(*) FROM billing.invoices") == [1]


def test_check_is_clean_after_the_set_schema_recipe(make_project: MakeProject) -> None:
    project = make_project("hardening")
    project.revision("create tables")
    project.upgrade()
    project.execute("CREATE SCHEMA sales")
    project.execute(
        "INSERT INTO accounts (email, code) VALUES ('a@x.test', 'a');"
        "INSERT INTO orders (account_id, total)"
        f" SELECT id, n FROM accounts, generate_series(1, {ROWS}) n"
    )
    project.use("models_schema")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("orders in sales")
    (violation,) = refused.value.violations
    assert "SET SCHEMA" in violation.fix
    path = project.written_revision("orders in sales")
    source = path.read_text()
    upgrade = (
        'def upgrade() -> None:\n    op.execute(\'ALTER TABLE "orders" SET SCHEMA "sales"\')\n'
    )
    downgrade = (
        "def downgrade() -> None:\n"
        '    op.execute(\'ALTER TABLE "sales"."orders" SET SCHEMA "public"\')\n'
    )
    head = source[: source.index("def upgrade")]
    path.write_text(f"from alembic import op\n{head}{upgrade}\n\n{downgrade}")
    project.upgrade()
    project.check()  # the trigger moved with its table: nothing to drop and create again
    assert project.revisions("nothing to do") == []
    assert project.query("SELECT count(*) FROM sales.orders") == [ROWS]
    project.downgrade("0001")
    assert project.query("SELECT count(*) FROM orders") == [ROWS]
    project.upgrade()
    project.check()


def test_a_schema_the_models_name_is_created_by_the_first_migration(
    make_project: MakeProject,
) -> None:
    """Alembic creates tables, not schemas: the first upgrade failed on a database without it."""
    project = make_project("schemas")
    source = project.revision("create orders").read_text()
    assert "op.execute('CREATE SCHEMA IF NOT EXISTS \"sales\"')" in source
    project.upgrade()
    project.check()
    assert project.query(SALES_TABLES) == ["orders"]
    project.downgrade()
    assert project.query("SELECT nspname FROM pg_namespace WHERE nspname = 'sales'") == []
    assert project.leftovers() == {}
