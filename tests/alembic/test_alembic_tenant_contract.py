"""TenantMixin on a table with rows, every step generated: expand, then backfill and contract.

The second autogenerate (``-x backfill=orders.tenant_id=<SQL>``) writes the backfill, the
``NOT VALID`` check, its validation, ``SET NOT NULL``, the tenant-led unique rule built
concurrently, and row-level security last. The tests run it on 3,000 rows and watch what
PostgreSQL does: the order of the statements, that ``SET NOT NULL`` did not scan the table,
that nothing rewrote it, that ``alembic check`` is clean after each step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic.util import CommandError
from alembic_project import Project, ruff_check, squawk
from sqlalchemy import Engine, event, exc
from sqlalchemy.pool import Pool

MakeProject = Callable[[str], Project]
ORDER_ROWS = 3000
TENANT_SQL = "(SELECT t.id FROM tenants t WHERE t.name = orders.shop)"
BACKFILL = f"backfill=orders.tenant_id={TENANT_SQL}"
PROVEN = 'existing constraints on column "orders.tenant_id" are sufficient to prove'
"""PostgreSQL's DEBUG1 message when SET NOT NULL skips the scan (a valid check proves it)."""


def _with_rows(make_project: MakeProject) -> Project:
    project = make_project("tenant_add")
    project.revision("create orders")
    project.upgrade()
    project.execute(
        "INSERT INTO tenants (name) VALUES ('north'), ('south');"
        "INSERT INTO orders (number, shop) SELECT 'n' || g,"
        f" (ARRAY['north', 'south'])[1 + mod(g, 2)] FROM generate_series(1, {ORDER_ROWS}) g"
    )
    return project


def _relfilenode(project: Project) -> list[int]:
    return project.query("SELECT relfilenode FROM pg_class WHERE relname = 'orders'")


def _assert_lint_clean(project: Project, paths: list[Any]) -> None:
    lint = ruff_check(*paths)
    assert lint.returncode == 0, lint.stdout
    status, report = squawk(project)
    assert status == 0, report


@contextmanager
def _server_log() -> Iterator[tuple[list[str], list[str]]]:
    """The statements sent by this process and the server's messages down to DEBUG1."""
    statements: list[str] = []
    notices: list[str] = []

    def connected(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET client_min_messages = debug1")
        dbapi_connection.commit()

    def sent(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Pool, "connect", connected)
    event.listen(Engine, "before_cursor_execute", sent)
    try:
        yield statements, notices
    finally:
        event.remove(Engine, "before_cursor_execute", sent)
        event.remove(Pool, "connect", connected)


def _first(statements: list[str], fragment: str, *, after: str | None = None) -> int:
    """The index of the first statement with ``fragment`` (or, with ``after``, the one after)."""
    found = next(i for i, statement in enumerate(statements) if fragment in statement)
    if after is None:
        return found
    assert after in statements[found + 1]
    return found + 1


def _expanded(make_project: MakeProject) -> tuple[Project, list[int]]:
    project = _with_rows(make_project)
    before = _relfilenode(project)
    project.use("models_v2")
    paths = project.revisions("orders get tenant_id")
    _assert_lint_clean(project, paths)
    project.upgrade()
    project.check()
    assert _relfilenode(project) == before
    return project, before


def test_backfill_and_contract_are_generated_and_rewrite_nothing(
    make_project: MakeProject,
) -> None:
    project, before = _expanded(make_project)
    project.use("models_v3")
    paths = project.revisions("orders are tenant rows", BACKFILL)
    _assert_lint_clean(project, paths)
    source = paths[-1].read_text()
    upgrade = source[: source.index("def downgrade")]
    steps = [
        (
            f"op.backfill(\n        'orders',\n        {{'tenant_id': '{TENANT_SQL}'}},\n"
            "        where='tenant_id IS NULL',\n    )"
        ),
        "op.add_not_null_check('orders', 'tenant_id')",
        "        op.validate_constraint('chk_orders_tenant_id_not_null', 'orders')",
        "op.set_not_null('orders', 'tenant_id')",
        (
            "op.create_index('uq_orders_tenant_id_number', 'orders', ['tenant_id', 'number'],"
            " unique=True, postgresql_concurrently=True, if_not_exists=True)"
        ),
        "op.create_unique_constraint_using_index('uq_orders_tenant_id_number', 'orders')",
        "op.drop_replaced_unique(\n        'uq_orders_number',",
        "op.enable_row_level_security('orders')",
        "op.create_policy(",
    ]
    positions = [upgrade.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "nullable=False" not in source  # no plain SET NOT NULL that scans under the lock
    with _server_log() as (statements, notices):
        project.upgrade()
    order = [
        _first(statements, "WITH pgkeel_batch"),
        _first(statements, 'CHECK ("tenant_id" IS NOT NULL) NOT VALID'),
        _first(statements, 'VALIDATE CONSTRAINT "chk_orders_tenant_id_not_null"'),
        _first(statements, 'ALTER COLUMN "tenant_id" SET NOT NULL'),
        _first(statements, "SET NOT NULL", after='DROP CONSTRAINT IF EXISTS "chk_orders_'),
        _first(statements, "CREATE UNIQUE INDEX CONCURRENTLY"),
        _first(statements, "ENABLE ROW LEVEL SECURITY"),
        _first(statements, "CREATE POLICY"),
    ]
    assert order == sorted(order), statements
    assert any(PROVEN in notice for notice in notices)  # SET NOT NULL did not scan the table
    project.check()
    assert _relfilenode(project) == before  # no step rewrote the table
    assert project.query(
        "SELECT attnotnull FROM pg_attribute"
        " WHERE attrelid = 'orders'::regclass AND attname = 'tenant_id'"
    ) == [True]
    checks = (
        "SELECT conname FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'c'"
    )
    assert project.query(checks) == []
    assert project.query("SELECT relname FROM pg_class WHERE relforcerowsecurity") == ["orders"]
    by_tenant = project.query(
        "SELECT count(*) FROM orders o JOIN tenants t ON t.id = o.tenant_id AND t.name = o.shop"
    )
    assert by_tenant == [ORDER_ROWS]
    n1 = "INSERT INTO orders (tenant_id, number, shop) SELECT id, 'n1', name FROM tenants"
    project.execute(f"{n1} WHERE name = 'north'")  # unique per tenant now: n1 is south's
    with pytest.raises(exc.IntegrityError):
        project.execute(f"{n1} WHERE name = 'south'")
    project.execute("DELETE FROM orders WHERE shop = 'north' AND number = 'n1'")

    project.downgrade("0003")
    assert _relfilenode(project) == before
    assert project.query("SELECT relname FROM pg_class WHERE relrowsecurity") == []
    with pytest.raises(exc.IntegrityError):  # numbers are unique again, over all tenants
        project.execute(f"{n1} WHERE name = 'north'")
    project.upgrade()
    project.check()
    assert _relfilenode(project) == before


def test_without_a_backfill_the_validation_stops_and_the_table_is_left_as_it_was(
    make_project: MakeProject,
) -> None:
    project, before = _expanded(make_project)
    project.use("models_v3")
    project.revisions("orders are tenant rows")  # the old rows keep their NULL tenant_id
    with pytest.raises(exc.IntegrityError, match="chk_orders_tenant_id_not_null"):
        project.upgrade()
    assert project.query("SELECT version_num FROM alembic_version") == ["0004"]
    assert project.query("SELECT relname FROM pg_class WHERE relrowsecurity") == []
    project.execute(f"UPDATE orders SET tenant_id = {TENANT_SQL}")
    project.upgrade()  # runs again: the check left by the stopped run is replaced
    project.check()
    assert _relfilenode(project) == before


def test_a_not_valid_check_in_the_database_leaves_alembic_check_clean(
    make_project: MakeProject,
) -> None:
    project, _ = _expanded(make_project)
    project.execute(
        "ALTER TABLE orders ADD CONSTRAINT chk_orders_shop CHECK (shop <> '') NOT VALID"
    )
    project.check()  # reflecting the NOT VALID check warns nothing (warnings are errors here)
    project.use("models_v3")
    paths = project.revisions("orders are tenant rows", BACKFILL)
    assert "chk_orders_shop" not in paths[-1].read_text()


def test_a_backfill_for_a_column_that_stays_nullable_is_an_error(
    make_project: MakeProject,
) -> None:
    project, _ = _expanded(make_project)
    project.use("models_v3")
    with pytest.raises(CommandError, match=r"no column orders\.shop of a table that exists"):
        project.revisions("orders are tenant rows", BACKFILL, "backfill=orders.shop='x'")
    with pytest.raises(CommandError, match=r"expected table\.column=<SQL"):
        project.revisions("orders are tenant rows", "backfill=orders.tenant_id")
    assert len(project.versions()) == 3
