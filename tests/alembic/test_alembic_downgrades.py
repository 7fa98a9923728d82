"""Downgrades on tables with rows: every unique rule stays in place, indexes are built concurrently.

Each test watches a downgrade (or upgrade) statement by statement: right before each statement
the migration sends, a second connection checks in the catalog that every unique rule of the
table has a valid unique index, and that a duplicate row is refused.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic import command
from alembic_project import Project, ruff_check
from sqlalchemy import Engine, create_engine, event, exc
from test_alembic_examples import assert_clean

MakeProject = Callable[[str], Project]
MEMBER_ROWS = 3000
VALID_UNIQUE = """
    SELECT pg_get_indexdef(indexrelid) FROM pg_index
    WHERE indrelid = to_regclass('{table}') AND indisunique AND indisvalid AND indisready
"""
KEY = re.compile(r"USING btree \((.*?)\)(?: INCLUDE| NULLS| WHERE|$)")


def _keys(definitions: list[str]) -> set[str]:
    """The key columns of each unique index definition: ``email``, ``club, code``..."""
    return {match.group(1) for text in definitions if (match := KEY.search(text))}


@contextmanager
def watching(project: Project, check: Callable[[Any], None]) -> Iterator[list[str]]:
    """Run ``check(connection)`` before each statement the migrations send; yield the statements.

    The check runs on a connection of its own, in a transaction it rolls back, with a short
    ``lock_timeout``: a statement blocked by the migration's lock counts as refused.
    """
    engine = create_engine(project.url)
    sent: list[str] = []
    busy = [False]

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if busy[0] or conn.engine is engine:
            return
        busy[0] = True
        try:
            sent.append(statement)
            with engine.connect() as probe:
                probe.exec_driver_sql("SET lock_timeout = '200ms'")
                check(probe)
                probe.rollback()
        finally:
            busy[0] = False

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        engine.dispose()


def refused(probe: Any, statement: str) -> bool:
    """Whether ``statement`` fails on a unique rule (or waits on the migration's lock)."""
    savepoint = probe.begin_nested()
    try:
        probe.exec_driver_sql(statement)
    except (exc.IntegrityError, exc.OperationalError):
        savepoint.rollback()
        return True
    savepoint.rollback()
    return False


MEMBER = "INSERT INTO members (email, club, code) VALUES ('{}', '{}', '{}')"
MEMBER_RULES = {"email", "club, code", "lower(email)"}


def unique_keys(probe: Any, table: str) -> set[str] | None:
    """The keys of the table's valid unique indexes; None while the migration locks the table."""
    savepoint = probe.begin_nested()
    try:
        rows = probe.exec_driver_sql(VALID_UNIQUE.format(table=table)).all()
    except exc.OperationalError:  # an ACCESS EXCLUSIVE lock: nobody can write a row either
        savepoint.rollback()
        return None
    savepoint.rollback()
    return _keys([row[0] for row in rows])


def _member_rules_hold(probe: Any) -> None:
    keys = unique_keys(probe, "members")
    assert keys is None or keys >= MEMBER_RULES, keys
    assert refused(probe, MEMBER.format("m7@x.test", "c-free", "k-free"))  # the same email
    assert refused(probe, MEMBER.format("M7@X.test", "c-free", "k-free"))  # lower(email)
    assert refused(probe, MEMBER.format("free@x.test", "c7", "k7"))  # club and code


def _members(make_project: MakeProject) -> Project:
    """The convert example with rows, made soft-delete by its two generated revisions."""
    project = make_project("convert")
    project.revision("create members")
    project.upgrade()
    project.execute(
        "INSERT INTO members (email, club, code) SELECT 'm' || g || '@x.test', 'c' || g,"
        f" 'k' || g FROM generate_series(1, {MEMBER_ROWS}) g"
    )
    project.use("models_v2")
    assert_clean(project, *project.revisions("soft delete members"))
    project.upgrade()
    project.check()
    return project


def _relfilenode(project: Project, table: str) -> list[int]:
    return project.query(f"SELECT relfilenode FROM pg_class WHERE relname = '{table}'")


def test_soft_delete_downgrade_keeps_every_unique_rule(make_project: MakeProject) -> None:
    project = _members(make_project)
    downgrade = project.versions()[-1].read_text().split("def downgrade", 1)[1]
    assert "op.create_unique_constraint(" not in downgrade  # no build under a SHARE lock
    build = downgrade.index("op.create_index('uq_members_email_new', 'members', ['email'],")
    assert "postgresql_concurrently=True" in downgrade[build:].split("\n", 1)[0]
    drop = downgrade.index("op.drop_replaced_unique(\n            'uq_members_email',")
    rename = downgrade.index("op.rename_index('uq_members_email_new', 'uq_members_email')")
    attach = downgrade.index("op.create_unique_constraint_using_index('uq_members_email',")
    assert build < drop < rename < attach
    before = _relfilenode(project, "members")
    with watching(project, _member_rules_hold) as sent:
        project.downgrade("0001")
    assert any("CREATE UNIQUE INDEX CONCURRENTLY" in statement for statement in sent)
    assert not any(re.search(r"ADD CONSTRAINT \S+ UNIQUE \(", s) for s in sent)
    assert _relfilenode(project, "members") == before
    constraints = project.query(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'members'::regclass AND contype = 'u'"
    )
    assert constraints == ["uq_members_club_code", "uq_members_email"]
    partial = (
        "SELECT count(*) FROM pg_index WHERE indrelid = 'members'::regclass AND indpred IS NOT NULL"
    )
    assert project.query(partial) == [0]  # the full rules are back, not the soft-delete ones
    with pytest.raises(exc.IntegrityError):
        project.execute(MEMBER.format("m9@x.test", "c-other", "k-other"))
    with watching(project, _member_rules_hold):
        project.upgrade()
    project.check()
    project.execute("UPDATE members SET deleted_at = now() WHERE email = 'm9@x.test'")
    project.execute(MEMBER.format("m9@x.test", "c9", "k9"))  # a deleted row frees its values


def test_a_failed_restore_keeps_the_soft_delete_rule(make_project: MakeProject) -> None:
    project = _members(make_project)
    project.execute("UPDATE members SET deleted_at = now() WHERE email = 'm5@x.test'")
    project.execute(MEMBER.format("m5@x.test", "c-again", "k-again"))  # allowed: m5 is deleted
    with pytest.raises(exc.IntegrityError):  # the full rule cannot hold: the build fails
        project.downgrade("0001")
    indexes = project.query(
        "SELECT indexrelid::regclass::text FROM pg_index"
        " WHERE indrelid = 'members'::regclass AND indisvalid AND indisunique"
    )
    assert "uq_members_email" in indexes  # the soft-delete rule is still there
    project.execute("DELETE FROM members WHERE code = 'k-again'")
    project.downgrade("0001")  # runs again once the duplicate is gone
    assert project.query("SELECT version_num FROM alembic_version") == ["0001"]


CUSTOMER_ROWS = 2000


def _loosened(make_project: MakeProject) -> tuple[Project, dict[str, list[int]]]:
    """Customers and orders with rows; a unique rule, a foreign key and a column then dropped."""
    project = make_project("downgrades")
    project.revision("create customers and orders")
    project.upgrade()
    project.execute(
        "INSERT INTO customers (email) SELECT 'c' || g || '@x.test'"
        f" FROM generate_series(1, {CUSTOMER_ROWS}) g;"
        "INSERT INTO orders (customer_id, number, note) SELECT id, 'n' || email, 'note'"
        " FROM customers"
    )
    files = {table: _relfilenode(project, table) for table in ("customers", "orders")}
    project.use("models_v2")
    paths = project.revisions("loosen", "acknowledge=orders.note,customers.uq_customers_email")
    assert ruff_check(*paths).returncode == 0  # squawk flags the drops: the point of the example
    project.upgrade()
    project.check()
    return project, files


def _offline_downgrade(project: Project, target: str) -> str:
    config = project.config()
    command.downgrade(config, target, sql=True)
    assert isinstance(config.output_buffer, io.StringIO)
    return config.output_buffer.getvalue()


def test_a_dropped_unique_rule_and_index_come_back_without_blocking_writes(
    make_project: MakeProject,
) -> None:
    project, files = _loosened(make_project)
    sql = _offline_downgrade(project, "0002:0001")
    assert re.search(r"ADD CONSTRAINT \S+ UNIQUE \(", sql) is None  # no build under a SHARE lock
    assert "CREATE INDEX idx_orders_note" not in sql
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_orders_note ON orders (note)" in sql
    build = sql.index("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_customers_email")
    assert build < sql.index("ALTER TABLE orders ADD COLUMN note")  # first: nothing done yet
    attach = 'ADD CONSTRAINT "uq_customers_email" UNIQUE USING INDEX "uq_customers_email"'
    assert build < sql.index(attach) < sql.index("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_")
    assert "FOREIGN KEY(customer_id) REFERENCES customers (id);" in sql  # whole, in the txn
    with watching(project, lambda _probe: None) as sent:
        project.downgrade("0001")
    assert not [s for s in sent if "CREATE" in s and "INDEX" in s and "CONCURRENTLY" not in s]
    assert {table: _relfilenode(project, table) for table in files} == files
    valid = "SELECT conname FROM pg_constraint WHERE convalidated AND conrelid = 'orders'::regclass"
    assert "fk_orders_customer_id" in project.query(valid)
    assert "uq_customers_email" in project.query(
        "SELECT conname FROM pg_constraint WHERE contype = 'u' AND conrelid = 'customers'::regclass"
    )
    with pytest.raises(exc.IntegrityError):
        project.execute("INSERT INTO customers (email) VALUES ('c1@x.test')")
    with pytest.raises(exc.IntegrityError):
        project.execute(
            "INSERT INTO orders (customer_id, number) VALUES (gen_random_uuid(), 'stray')"
        )
    project.upgrade()
    project.check()


def test_a_downgrade_the_rows_no_longer_allow_keeps_the_table_as_it_was(
    make_project: MakeProject,
) -> None:
    project, _ = _loosened(make_project)
    project.execute("INSERT INTO customers (email) VALUES ('c1@x.test')")  # allowed at v2
    with pytest.raises(exc.IntegrityError):
        project.downgrade("0001")
    assert project.query("SELECT version_num FROM alembic_version") == ["0002"]
    project.execute(
        "DELETE FROM customers WHERE email = 'c1@x.test'"
        " AND id NOT IN (SELECT customer_id FROM orders)"
    )
    project.downgrade("0001")  # runs again once the duplicate is gone
    assert project.query("SELECT version_num FROM alembic_version") == ["0001"]
