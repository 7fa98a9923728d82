"""Hypothesis-generated reads and writes of three tenants, through the ORM and raw SQL.

Each example acts as one tenant on the runtime role and runs a few operations aimed at rows of
every tenant, live and deleted: ORM selects, gets (fresh or from the identity map), relationship
loads, bulk updates and deletes, inserts and moves; raw SELECTs, joins, CTEs, UPDATEs, DELETEs,
INSERTs. Afterwards, as the superuser in the same transaction, every row of the other tenants
must be exactly as seeded. Reads may return only the acting tenant's rows (live rows only, for
the ORM); the only errors allowed are pgkeel's. One database is reused: each example runs in a
transaction that is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from pgkeel import PgkeelError, create_sessionmaker, tenant_context
from tests.isolation.conftest import STATES, Seed
from tests.isolation.models import Customer, Invoice, Tag

MODELS: dict[str, type[Any]] = {"customers": Customer, "invoices": Invoice, "tags": Tag}
TEXT_COLUMN = {"customers": "name", "invoices": "number", "tags": "label"}
TEXT_CHANGE = {"customers": "name || 'x'", "invoices": "number + 1", "tags": "label || 'x'"}


@dataclass(frozen=True)
class Op:
    kind: str
    table: str
    tenant: int
    state: str


@dataclass
class Run:
    session: Session
    seed: Seed
    actor: int
    reads: list[tuple[str, uuid.UUID, bool]]  # (what, tenant_id, deleted) of every row read

    def ident(self, op: Op) -> uuid.UUID:
        ids = {"customers": self.seed.customers, "invoices": self.seed.invoices}
        return ids.get(op.table, self.seed.tags)[op.tenant, op.state]

    def orm(self, what: str, rows: object) -> None:
        for row in rows:  # type: ignore[attr-defined]
            if row is not None:
                self.reads.append((what, row.tenant_id, row.deleted_at is not None))

    def raw(self, what: str, tenants: object) -> None:
        self.reads.extend((what, tenant, False) for tenant in tenants)  # type: ignore[attr-defined]


def _new_row(run: Run, op: Op, tenant: uuid.UUID) -> object:
    marker = uuid.uuid4().hex
    if op.table == "customers":
        return Customer(tenant_id=tenant, name=marker, email=f"{marker}@x.test")
    if op.table == "tags":
        return Tag(tenant_id=tenant, label=marker)
    own_customer = run.seed.customers[run.actor, "live"]
    return Invoice(tenant_id=tenant, customer_id=own_customer, number=7)


def _preload(run: Run, op: Op) -> Any:
    model = MODELS[op.table]
    with tenant_context(run.seed.tenants[op.tenant]):
        statement = select(model).where(model.id == run.ident(op))
        return run.session.scalars(statement.execution_options(include_deleted=True)).one()


def orm_select(run: Run, op: Op) -> None:
    run.orm("select", run.session.scalars(select(MODELS[op.table])))


def orm_get(run: Run, op: Op) -> None:
    run.orm("get", [run.session.get(MODELS[op.table], run.ident(op))])


def orm_get_from_identity_map_then_write(run: Run, op: Op) -> None:
    obj = _preload(run, op)
    run.orm("get (identity map)", [run.session.get(MODELS[op.table], run.ident(op))])
    setattr(obj, TEXT_COLUMN[op.table], getattr(obj, TEXT_COLUMN[op.table]))
    obj.deleted_at = None
    run.session.flush()


def orm_relationships(run: Run, op: Op) -> None:
    option = joinedload if op.state == "live" else selectinload
    customer = (
        run.session.scalars(
            select(Customer)
            .where(Customer.id == run.seed.customers[run.actor, "live"])
            .options(option(Customer.invoices), option(Customer.tags))
        )
        .unique()
        .one_or_none()
    )
    if customer is not None:
        run.orm("relationship", customer.invoices)
        run.orm("relationship", customer.tags)
        run.orm("relationship", [invoice.customer for invoice in customer.invoices])


def orm_bulk_update(run: Run, op: Op) -> None:
    model = MODELS[op.table]
    column = getattr(model, TEXT_COLUMN[op.table])
    run.session.execute(update(model).where(model.id == run.ident(op)).values({column: column}))


def orm_bulk_delete(run: Run, op: Op) -> None:
    model = MODELS[op.table]
    hard = op.state == "deleted" and op.table == "invoices"  # nothing references invoices
    statement = delete(model).where(model.id == run.ident(op))
    run.session.execute(statement.execution_options(hard_delete=hard))


def orm_insert(run: Run, op: Op) -> None:
    run.session.add(_new_row(run, op, run.seed.tenants[op.tenant]))
    run.session.flush()


def orm_move(run: Run, op: Op) -> None:
    obj = run.session.get(MODELS[op.table], run.ident(Op(op.kind, op.table, run.actor, "live")))
    if obj is not None:
        obj.tenant_id = run.seed.tenants[op.tenant]
        run.session.flush()


def raw_select(run: Run, op: Op) -> None:
    rows = run.session.execute(text(f"SELECT tenant_id FROM {op.table}")).scalars()
    run.raw("raw select", rows)


def raw_select_by_id(run: Run, op: Op) -> None:
    rows = run.session.execute(
        text(f"SELECT tenant_id FROM {op.table} WHERE id = :id"),
        {"id": run.ident(op)},
    ).scalars()
    run.raw("raw select by id", rows)


def raw_join_and_cte(run: Run, _op: Op) -> None:
    rows = run.session.execute(
        text(
            "WITH i AS (SELECT * FROM invoices) SELECT i.tenant_id, c.tenant_id, t.tenant_id "
            "FROM i LEFT JOIN customers c ON c.id = i.customer_id "
            "LEFT JOIN customer_tags ct ON ct.customer_id = c.id "
            "LEFT JOIN tags t ON t.id = ct.tag_id"
        )
    ).all()
    run.raw("raw join", [tenant for row in rows for tenant in row if tenant is not None])


def raw_update(run: Run, op: Op) -> None:
    change = f"{TEXT_COLUMN[op.table]} = {TEXT_CHANGE[op.table]}"
    where = " WHERE id = :id" if op.state == "live" else ""
    run.session.execute(
        text(f"UPDATE {op.table} SET {change}{where}"),
        {"id": run.ident(op)},
    )


def raw_delete(run: Run, op: Op) -> None:
    if op.table != "invoices":
        return  # invoices and tag links point at every customer and tag
    run.session.execute(
        text(f"DELETE FROM {op.table} WHERE id = :id"),
        {"id": run.ident(op)},
    )


def raw_insert(run: Run, op: Op) -> None:
    tenant = run.seed.tenants[op.tenant]
    if op.table == "tags":
        run.session.execute(
            text("INSERT INTO tags (tenant_id, label) VALUES (:t, :l)"),
            {"t": tenant, "l": uuid.uuid4().hex},
        )
    else:
        run.session.execute(
            text(
                "INSERT INTO invoices (tenant_id, customer_id, number, amount) "
                "VALUES (:t, :c, 1, 1)"
            ),
            {"t": tenant, "c": run.seed.customers[run.actor, "live"]},
        )


def raw_move(run: Run, op: Op) -> None:
    run.session.execute(
        text(f"UPDATE {op.table} SET tenant_id = :t WHERE id = :id"),
        {
            "t": run.seed.tenants[op.tenant],
            "id": run.ident(Op(op.kind, op.table, run.actor, "live")),
        },
    )


OPERATIONS: dict[str, Callable[[Run, Op], None]] = {
    f.__name__: f
    for f in (
        orm_select,
        orm_get,
        orm_get_from_identity_map_then_write,
        orm_relationships,
        orm_bulk_update,
        orm_bulk_delete,
        orm_insert,
        orm_move,
        raw_select,
        raw_select_by_id,
        raw_join_and_cte,
        raw_update,
        raw_delete,
        raw_insert,
        raw_move,
    )
}

operations = st.builds(
    Op,
    kind=st.sampled_from(sorted(OPERATIONS)),
    table=st.sampled_from(sorted(MODELS)),
    tenant=st.integers(0, 2),
    state=st.sampled_from(STATES),
)

SNAPSHOT = {
    table: text(f"SELECT * FROM {table} WHERE tenant_id <> :actor ORDER BY 1, 2, 3")
    for table in (*MODELS, "customer_tags")
}


def snapshot(connection: Connection, tenant: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the other tenants, as the superuser sees them."""
    return {
        table: [tuple(row) for row in connection.execute(query, {"actor": tenant})]
        for table, query in SNAPSHOT.items()
    }


class Snapshots(dict[int, dict[str, list[tuple[Any, ...]]]]):
    """The other tenants' rows as seeded, per acting tenant (short repr for Hypothesis reports)."""

    def __repr__(self) -> str:
        return f"Snapshots({len(self)} tenants)"


@pytest.fixture(scope="module")
def superuser_sessions(owner_engine: Engine) -> sessionmaker[Session]:
    return create_sessionmaker(owner_engine)


@pytest.fixture(scope="module")
def before(owner_engine: Engine, seeded: Seed) -> Snapshots:
    with owner_engine.connect() as connection:
        return Snapshots({n: snapshot(connection, t) for n, t in enumerate(seeded.tenants)})


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actor=st.integers(0, 2), ops=st.lists(operations, min_size=1, max_size=5))
def test_no_tenant_reads_or_changes_another_tenants_rows(  # noqa: PLR0917
    actor: int,
    ops: list[Op],
    owner_engine: Engine,
    superuser_sessions: sessionmaker[Session],
    runtime_role: str,
    seeded: Seed,
    before: Snapshots,
) -> None:
    tenant = seeded.tenants[actor]
    with owner_engine.connect() as connection:
        outer = connection.begin()
        connection.execute(text(f'SET LOCAL ROLE "{runtime_role}"'))
        session = superuser_sessions(bind=connection, join_transaction_mode="create_savepoint")
        run = Run(session, seeded, actor, [])
        with tenant_context(tenant):
            for op in ops:
                try:
                    with session.begin_nested():
                        OPERATIONS[op.kind](run, op)
                except PgkeelError:
                    session.expunge_all()
            session.commit()
        session.close()
        connection.execute(text("RESET ROLE"))
        leaked = [read for read in run.reads if read[1] != tenant]
        deleted = [read for read in run.reads if read[2] and not read[0].startswith("raw")]
        assert not leaked, f"rows of another tenant were read: {leaked}"
        assert not deleted, f"soft-deleted rows were read through the ORM: {deleted}"
        assert snapshot(connection, tenant) == before[actor], "another tenant's rows changed"
        outer.rollback()
