"""A column drop never takes a unique rule with it before the rule's replacement is valid.

PostgreSQL drops, with a column, every index whose key, expression or predicate uses it. The
``dropped_rules`` example drops such columns on tables with rows: a predicate (accounts), an
expression (coupons), soft delete removed (members) and ``TenantMixin`` removed (orders).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from alembic import command
from alembic_project import Project, ruff_check, squawk
from sqlalchemy import exc

from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
ROWS = 300
DROPPED = (
    "acknowledge=accounts.archived,coupons.suffix,members.deleted_at,members.is_deleted,"
    "orders.tenant_id"
)
UNIQUE_INDEXES = """
    SELECT indexrelid::regclass::text || CASE WHEN indisvalid THEN '' ELSE ' INVALID' END
    FROM pg_index WHERE indisunique AND indrelid::regclass::text IN ({})
    AND indexrelid::regclass::text NOT LIKE 'pk_%'
"""
OLD_RULES = [
    "uq_accounts_email",
    "uq_coupons_code",
    "uq_members_email",
    "uq_orders_tenant_id_number",
]
NEW_RULES = [
    "uq_accounts_email",
    "uq_coupons_lower_code",
    "uq_members_email",
    "uq_orders_number",
]


def _fill(project: Project) -> None:
    """Rows in every table, and in each one a duplicate that only the old rule allows."""
    series = f"generate_series(1, {ROWS}) n"
    project.execute(
        "INSERT INTO tenants (name) VALUES ('a'), ('b');"
        f"INSERT INTO accounts (email) SELECT 'a' || n FROM {series};"
        "INSERT INTO accounts (email, archived) VALUES ('a1', true);"
        f"INSERT INTO coupons (code, suffix) SELECT 'c' || n, NULL FROM {series};"
        "INSERT INTO coupons (code, suffix) VALUES ('C1', '-x');"
        f"INSERT INTO members (email) SELECT 'm' || n FROM {series};"
        "INSERT INTO members (email, deleted_at) VALUES ('m1', now());"
        f"INSERT INTO orders (tenant_id, number) SELECT id, 'n' || n FROM tenants, {series}"
        " WHERE name = 'a';"
        "INSERT INTO orders (tenant_id, number) SELECT id, 'n1' FROM tenants WHERE name = 'b';"
    )


DUPLICATES = (
    "DELETE FROM accounts WHERE archived;"
    "DELETE FROM coupons WHERE suffix IS NOT NULL;"
    "DELETE FROM members WHERE deleted_at IS NOT NULL;"
    "DELETE FROM orders WHERE tenant_id = (SELECT id FROM tenants WHERE name = 'b');"
)
"""Deletes the rows the new rules cannot hold (what the author does after a failed build)."""


def _unique_indexes(project: Project, *tables: str) -> list[str]:
    listed = ", ".join(f"'{table}'" for table in tables)
    return project.query(UNIQUE_INDEXES.format(listed))


def _refused(project: Project, sql: str) -> bool:
    try:
        project.execute(sql)
    except exc.IntegrityError:
        return True
    return False


def _assert_live_duplicates_refused(project: Project) -> None:
    """A second live account, coupon, member and order with the same value is refused."""
    assert _refused(project, "INSERT INTO accounts (email) VALUES ('a2')")
    assert _refused(project, "INSERT INTO coupons (code) VALUES ('C2')")
    assert _refused(project, "INSERT INTO members (email) VALUES ('m2')")
    assert _refused(project, "INSERT INTO orders (number) VALUES ('n2')")


def _generated(make_project: MakeProject) -> Project:
    """The example with rows, its second version generated (acknowledged) but not applied."""
    project = make_project("dropped_rules")
    project.revision("create tables")
    project.upgrade()
    _fill(project)
    project.use("models_v2")
    paths = project.revisions("drop columns", DROPPED)
    assert [path.name for path in paths] == [
        "0002_drop_columns.py",
        "0003_drop_columns_concurrently.py",
    ]
    lint = ruff_check(*paths)
    assert lint.returncode == 0, lint.stdout
    return project


def test_each_dropped_column_is_refused_with_nothing_else(make_project: MakeProject) -> None:
    project = make_project("dropped_rules")
    project.revision("create tables")
    project.upgrade()
    project.use("models_v2")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("drop columns")
    found = sorted((v.rule, v.where) for v in refused.value.violations)
    assert found == [
        ("drop-column", "accounts.archived"),
        ("drop-column", "coupons.suffix"),
        ("drop-column", "members.deleted_at"),
        ("drop-column", "members.is_deleted"),
        ("drop-column", "orders.tenant_id"),
    ]


def test_the_columns_are_dropped_after_the_new_rules_are_valid(
    make_project: MakeProject,
) -> None:
    project = _generated(make_project)
    transactional, concurrent = (path.read_text() for path in project.versions()[1:])
    for column in ("archived", "suffix", "deleted_at", "tenant_id"):
        assert f"op.drop_column('{column}'" not in transactional
        assert f"'{column}', if_exists=True)" in concurrent
    assert "op.drop_column('members', 'is_deleted')" in transactional  # no rule uses it
    upgrade = concurrent[: concurrent.index("def downgrade")]
    replaced = {
        "accounts": ("uq_accounts_email", "archived"),
        "coupons": ("uq_coupons_code", "suffix"),
        "members": ("uq_members_email", "deleted_at"),
        "orders": ("uq_orders_tenant_id_number", "tenant_id"),
    }
    for table, (rule, column) in replaced.items():
        dropped = re.search(rf"drop_replaced_unique\(\s+'{rule}'", upgrade)
        assert dropped is not None
        acknowledged = upgrade.index(f"'drop-column',\n        '{table}.{column}',")
        column_drop = upgrade.index(f"op.drop_column('{table}', '{column}', if_exists=True)")
        assert dropped.start() < acknowledged < column_drop


def test_a_failed_build_keeps_every_old_rule_then_runs_again(make_project: MakeProject) -> None:
    project = _generated(make_project)
    tables = ("accounts", "coupons", "members", "orders")
    project.upgrade("0002")
    assert _unique_indexes(project, *tables) == OLD_RULES
    with pytest.raises(exc.IntegrityError, match="could not create unique index"):
        project.upgrade()  # the archived duplicate email cannot be unique over every row
    assert project.query("SELECT version_num FROM alembic_version") == ["0002"]
    assert set(OLD_RULES) <= set(_unique_indexes(project, *tables))
    assert _refused(project, "INSERT INTO accounts (email) VALUES ('a3')")
    assert _refused(project, "INSERT INTO orders (number, tenant_id) SELECT 'n3', id FROM tenants")
    project.execute(DUPLICATES)
    project.upgrade()
    assert _unique_indexes(project, *tables) == NEW_RULES
    columns = "SELECT count(*) FROM information_schema.columns WHERE column_name = '{}'"
    for column in ("archived", "suffix", "deleted_at", "tenant_id"):
        assert project.query(columns.format(column)) == [0]
    project.check()
    _assert_live_duplicates_refused(project)


def test_the_downgrade_brings_the_columns_back_before_the_old_rules(
    make_project: MakeProject,
) -> None:
    project = _generated(make_project)
    project.execute(DUPLICATES)
    project.upgrade()
    # tenant_id comes back NOT NULL with no value for the rows: the orders cannot stay.
    project.execute("DELETE FROM orders")
    project.downgrade("0001")
    tables = ("accounts", "coupons", "members", "orders")
    assert _unique_indexes(project, *tables) == OLD_RULES
    predicate = (
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = '{}'::regclass"
    )
    assert project.query(predicate.format("uq_accounts_email")) == ["(NOT archived)"]
    assert project.query(predicate.format("idx_accounts_created_at")) == ["(NOT archived)"]
    project.upgrade()  # and up again
    project.check()
    assert _unique_indexes(project, *tables) == NEW_RULES


def test_a_rule_whose_predicate_uses_a_dropped_column_is_refused_by_name(
    make_project: MakeProject,
) -> None:
    project = make_project("dropped_rules")
    project.revision("create tables")
    project.upgrade()
    project.use("models_unruled")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("no archive", "acknowledge=accounts.archived")
    (violation,) = refused.value.violations
    assert (violation.rule, violation.where) == ("drop-unique", "accounts.uq_accounts_email")
    assert "uses column archived, which the migration drops" in violation.problem
    paths = project.revisions(
        "no archive", "acknowledge=accounts.archived,accounts.uq_accounts_email"
    )
    source = "".join(path.read_text() for path in paths)
    assert "'drop-unique',\n        'accounts.uq_accounts_email'," in source
    project.upgrade()
    project.check()
    project.downgrade("0001")
    assert _unique_indexes(project, "accounts") == ["uq_accounts_email"]


def _leaving_out(name: str) -> Callable[..., bool]:
    """An ``include_object`` that leaves the object called ``name`` out of autogenerate."""

    def include(_obj: object, object_name: str | None, *_: object) -> bool:
        return object_name != name

    return include


def test_a_rule_left_out_by_include_object_is_still_refused_when_a_column_drop_takes_it(
    make_project: MakeProject,
) -> None:
    project = make_project("dropped_rules")
    project.revision("create tables")
    project.upgrade()
    project.use("models_unruled")
    settings = {"include_object": _leaving_out("uq_accounts_email")}
    config = project.config("acknowledge=accounts.archived", settings=settings)
    with pytest.raises(UnsafeMigrationError) as refused:
        command.revision(config, message="no archive", autogenerate=True)
    (violation,) = refused.value.violations
    assert (violation.rule, violation.where) == ("drop-unique", "accounts.uq_accounts_email")
    assert "uses column archived, which the migration drops" in violation.problem
    assert [path.name for path in project.versions()] == ["0001_create_tables.py"]
    acknowledged = "acknowledge=accounts.archived,accounts.uq_accounts_email"
    command.revision(project.config(acknowledged, settings=settings), autogenerate=True)
    written = project.versions()[1].read_text()
    assert "'drop-unique',\n        'accounts.uq_accounts_email'," in written
    downgrade = written[written.index("def downgrade") :]
    restored = downgrade.index("CREATE UNIQUE INDEX uq_accounts_email")
    assert downgrade.index("op.add_column('accounts'") < restored
    project.upgrade()
    assert _unique_indexes(project, "accounts") == []
    project.downgrade("0001")  # the column, then the rule, back
    assert _unique_indexes(project, "accounts") == ["uq_accounts_email"]
    predicate = (
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = '{}'::regclass"
    )
    assert project.query(predicate.format("uq_accounts_email")) == ["(NOT archived)"]


def test_a_rule_left_out_whose_key_is_the_dropped_column_goes_with_it(
    make_project: MakeProject,
) -> None:
    project = make_project("dropped_rules")
    project.revision("create tables")
    project.upgrade()
    project.use("models_v2")
    settings = {"include_object": _leaving_out("uq_coupons_code")}
    config = project.config(settings=settings)
    with pytest.raises(UnsafeMigrationError) as refused:
        command.revision(config, message="drop columns", autogenerate=True)
    found = {(v.rule, v.where) for v in refused.value.violations}
    assert ("drop-column", "coupons.suffix") in found  # the rule's key expression uses it
    assert not any(where.startswith("coupons.uq_") for _, where in found)


OVERLAPPING = (
    "INSERT INTO bookings (during) VALUES ('[2026-01-01 10:00, 2026-01-01 11:00)');"
    "INSERT INTO bookings (during) VALUES ('[2026-01-01 10:30, 2026-01-01 12:00)')"
)


def test_an_exclusion_rule_a_column_drop_takes_is_refused_by_name(
    make_project: MakeProject,
) -> None:
    """Alembic does not compare exclusion constraints: only the database sees this one go."""
    project = make_project("dropped_exclusion")
    project.revision("create bookings")
    project.upgrade()
    with pytest.raises(exc.IntegrityError, match="ex_bookings_during"):
        project.execute(OVERLAPPING)
    project.use("models_v2")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("no cancellations", "acknowledge=bookings.cancelled")
    (violation,) = refused.value.violations
    assert (violation.rule, violation.where) == ("drop-unique", "bookings.ex_bookings_during")
    assert "drops exclusion rule ex_bookings_during" in violation.problem
    assert "uses column cancelled, which the migration drops" in violation.problem
    assert "op.drop_constraint" in violation.fix
    assert "PostgreSQL refuses that drop" in violation.problem
    assert [path.name for path in project.versions()] == ["0001_create_bookings.py"]
    (path,) = project.revisions(
        "no cancellations", "acknowledge=bookings.cancelled,bookings.ex_bookings_during"
    )
    upgrade = path.read_text()
    drop_rule = upgrade.index("op.drop_constraint('ex_bookings_during', 'bookings')")
    assert drop_rule < upgrade.index("op.drop_column('bookings', 'cancelled')")
    status, report = squawk(project)
    assert status == 0, report  # both drops acknowledged
    project.upgrade()  # PostgreSQL refuses the column drop while the rule uses it
    project.check()
    project.downgrade("0001")  # the column, then the rule, back
    with pytest.raises(exc.IntegrityError, match="ex_bookings_during"):
        project.execute(OVERLAPPING)
    project.upgrade()
    project.execute(OVERLAPPING)  # what the acknowledgement allowed


def test_foreign_keys_are_dropped_before_the_rule_they_depend_on(
    make_project: MakeProject,
) -> None:
    project = make_project("dropped_keys")
    project.revision("create tables")
    project.upgrade()
    project.execute(
        "INSERT INTO codes (name, code) VALUES ('a', 'A');"
        "INSERT INTO users (name, code_ref) VALUES ('u', 'A')"
    )
    project.use("models_v2")
    paths = project.revisions("no codes", "acknowledge=codes.code,users.code_ref")
    upgrade = "".join(path.read_text().split("def downgrade")[0] for path in paths)
    key = upgrade.index("op.drop_constraint(op.f('fk_users_code_ref')")
    assert key < upgrade.index("'uq_codes_code'")
    assert key < upgrade.index("op.drop_column('codes', 'code'")
    project.upgrade()
    project.check()
    project.execute("DELETE FROM users; DELETE FROM codes")  # code comes back NOT NULL
    project.downgrade("0001")
    assert _refused(project, "INSERT INTO users (name, code_ref) VALUES ('v', 'B')")
