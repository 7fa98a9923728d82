"""The runtime-role check covers the own tables of joined-table subclasses of tenant models.

Such a table has no ``tenant_id``: its policy shows a row when the parent row is visible. The
check finds it from the models (``Table.info``) or, without them, from the catalog (its primary
key is a foreign key to a tenant table's rows), at every level of inheritance, compares its
policy with pgkeel's, and counts it as tenant data for views. Each attack is built as the
superuser in a transaction that is rolled back, then exploited there as the runtime role.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest
from sqlalchemy import ForeignKey, create_engine, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import TenantMixin, create_sessionmaker, tenant_context
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.mixins import UUIDPrimaryKeyMixin
from pgkeel.roles import RoleProblem, runtime_role_problems
from pgkeel.types import TYPE_ANNOTATION_MAP, Str255
from tests.databases import models_database, runtime_role


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map: ClassVar = TYPE_ANNOTATION_MAP


class Filing(UUIDPrimaryKeyMixin, TenantMixin, Base):
    """A filing of a tenant."""

    __tenant_foreign_key__ = None
    kind: Mapped[Str255]
    __mapper_args__: ClassVar = {"polymorphic_on": "kind", "polymorphic_identity": "filing"}


class Audit(Filing):
    """An audit: a joined-table subclass."""

    __tablename__ = "audits"
    id: Mapped[uuid.UUID] = mapped_column(ForeignKey("filings.id"), primary_key=True)
    findings: Mapped[int]
    __mapper_args__: ClassVar = {"polymorphic_identity": "audit"}


class TaxAudit(Audit):
    """A tax audit: a joined-table subclass of a joined-table subclass."""

    __tablename__ = "tax_audits"
    id: Mapped[uuid.UUID] = mapped_column(ForeignKey("audits.id"), primary_key=True)
    owed: Mapped[int]
    __mapper_args__: ClassVar = {"polymorphic_identity": "tax_audit"}


TENANTS = (uuid.UUID(int=11), uuid.UUID(int=12))
SUBCLASS_TABLES = ("audits", "tax_audits")


@pytest.fixture(scope="module")
def database(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[URL]:
    """The models' tables, a tax audit per tenant, and the runtime role's URL."""
    name = f"{pgkeel_database_prefix}_role_subclasses"
    with models_database(pgkeel_server_url, name, Base.metadata) as url:
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        for tenant in TENANTS:
            with tenant_context(tenant), sessions.begin() as session:
                session.add(TaxAudit(findings=2, owed=100))
        engine.dispose()
        role = f"{pgkeel_database_prefix}_role_subclasses_runtime"
        with runtime_role(pgkeel_server_url, url, role) as runtime_url:
            yield runtime_url


@pytest.fixture
def admin(database: URL, pgkeel_server_url: URL) -> Iterator[Connection]:
    """A superuser connection in a transaction that is rolled back."""
    engine = create_engine(pgkeel_server_url.set(database=database.database))
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()
    engine.dispose()


@pytest.fixture
def as_runtime(admin: Connection, database: URL) -> Callable[[], Connection]:
    """``admin`` after the attack: now the runtime role, acting as tenant 0."""

    def become() -> Connection:
        admin.execute(text(f'SET LOCAL ROLE "{database.username}"'))
        admin.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(TENANTS[0])})
        return admin

    return become


def visible(connection: Connection, relation: str) -> int:
    return int(connection.execute(text(f"SELECT count(*) FROM {relation}")).scalar_one())


def only(found: list[RoleProblem], rule: str, *parts: str) -> RoleProblem:
    """The one problem found; it has ``rule`` and names each of ``parts``."""
    assert [p.rule for p in found] == [rule], [p.message for p in found]
    for part in parts:
        assert part in found[0].message, (part, found[0].message)
    assert "Fix:" in found[0].message
    return found[0]


ATTACKS = {
    "no-rls": ["ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"],
    "extra-policy": ["CREATE POLICY open_all ON {table} USING (true)"],
    "altered-policy": [
        "DROP POLICY tenant_isolation ON {table}",
        "CREATE POLICY tenant_isolation ON {table} USING (true) WITH CHECK (true)",
    ],
}


@pytest.mark.parametrize("metadata", [Base.metadata, None], ids=["models", "catalog"])
@pytest.mark.parametrize("table", SUBCLASS_TABLES)
@pytest.mark.parametrize("rule", list(ATTACKS))
def test_an_opened_subclass_table_is_named(
    admin: Connection,
    as_runtime: Callable[[], Connection],
    rule: str,
    table: str,
    metadata: object,
) -> None:
    for statement in ATTACKS[rule]:
        admin.execute(text(statement.format(table=table)))
    connection = as_runtime()
    assert visible(connection, table) == len(TENANTS)  # the leak is real: both tenants' rows
    found = runtime_role_problems(connection, metadata)  # type: ignore[arg-type]
    only(found, rule, f"'public.{table}'", "joined-table subclass")


@pytest.mark.parametrize("metadata", [Base.metadata, None], ids=["models", "catalog"])
@pytest.mark.parametrize("table", SUBCLASS_TABLES)
def test_a_definer_view_over_a_subclass_table_alone_is_named(
    admin: Connection,
    as_runtime: Callable[[], Connection],
    database: URL,
    table: str,
    metadata: object,
) -> None:
    admin.execute(text(f"CREATE VIEW subclass_rows AS SELECT id FROM {table}"))
    admin.execute(text(f'GRANT SELECT ON subclass_rows TO "{database.username}"'))
    connection = as_runtime()
    assert visible(connection, "subclass_rows") == len(TENANTS)
    found = runtime_role_problems(connection, metadata)  # type: ignore[arg-type]
    only(found, "definer-view", "'public.subclass_rows'", f"'public.{table}'")


@pytest.mark.parametrize("table", SUBCLASS_TABLES)
def test_the_fix_in_an_altered_policy_finding_restores_the_policy(
    admin: Connection, as_runtime: Callable[[], Connection], table: str
) -> None:
    for statement in ATTACKS["altered-policy"]:
        admin.execute(text(statement.format(table=table)))
    found = runtime_role_problems(as_runtime(), Base.metadata)
    fix = only(found, "altered-policy").message.split("Fix: ", 1)[1]
    admin.execute(text("RESET ROLE"))
    for statement in re.sub(r" \(or run the migrations\)\.$", "", fix).split("; "):
        admin.execute(text(statement))
    connection = as_runtime()
    assert visible(connection, table) == 1  # pgkeel's policy again: only tenant 0's row
    assert runtime_role_problems(connection, Base.metadata) == []
    assert runtime_role_problems(connection) == []


def test_the_catalog_tells_subclass_tables_from_other_tables_keyed_by_a_tenant_row(
    admin: Connection, as_runtime: Callable[[], Connection], database: URL
) -> None:
    admin.execute(text("CREATE TABLE filing_notes (id uuid PRIMARY KEY REFERENCES filings (id))"))
    admin.execute(text(f'GRANT SELECT ON filing_notes TO "{database.username}"'))
    admin.execute(text("ALTER TABLE audits NO FORCE ROW LEVEL SECURITY"))
    connection = as_runtime()
    found = runtime_role_problems(connection)  # no models: the catalog alone
    only(found, "no-rls", "'public.audits'", "lacks FORCE ROW LEVEL SECURITY")


def test_a_missing_subclass_table_is_named(
    admin: Connection, as_runtime: Callable[[], Connection]
) -> None:
    admin.execute(text("DROP TABLE tax_audits"))
    found = runtime_role_problems(as_runtime(), Base.metadata)
    only(found, "no-rls", "'tax_audits' does not exist")
