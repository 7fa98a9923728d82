"""The runtime-role check names user mappings that let the runtime role read in another session.

A ``postgres_fdw`` foreign table is read in a session opened with the login of the user mapping
that applies to the querying role; on a server that is this database, that session has no tenant
of the caller, and a bypassing login sees every tenant's rows. Each set-up is built as the
superuser in a transaction that is rolled back, then inspected there as the runtime role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, Connection

from pgkeel.roles import RoleProblem, runtime_role_problems
from tests.isolation.conftest import Seed
from tests.isolation.models import Base

OTHER_TENANT_ROWS = (
    "SELECT count(*) FROM all_invoices "
    "WHERE tenant_id <> CAST(current_setting('app.tenant_id') AS uuid)"
)


@pytest.fixture
def admin(owner_engine: Engine, seeded: Seed) -> Iterator[Connection]:
    """A superuser connection in a transaction that is rolled back, with postgres_fdw."""
    with owner_engine.connect() as connection:
        available = connection.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgres_fdw'")
        ).first()
        connection.rollback()
        if available is None:
            pytest.skip("the PostgreSQL server has no postgres_fdw extension (postgresql-contrib)")
        transaction = connection.begin()
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgres_fdw"))
        yield connection
        transaction.rollback()


@pytest.fixture
def as_runtime(admin: Connection, runtime_role: str, seeded: Seed) -> Callable[[], Connection]:
    """``admin`` after the set-up: now the runtime role, acting as tenant 0."""

    def become() -> Connection:
        admin.execute(text(f'SET LOCAL ROLE "{runtime_role}"'))
        admin.execute(
            text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(seeded.tenants[0])}
        )
        return admin

    return become


def loopback(admin: Connection, isolation_db: URL, name: str = "loop", host: str = "") -> None:
    """A postgres_fdw server: this database, unless ``host`` names another."""
    admin.execute(
        text(
            f"CREATE SERVER {name} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host "
            f"'{host or isolation_db.host}', port '{isolation_db.port or 5432}', "
            f"dbname '{isolation_db.database}')"
        )
    )


def mapping(admin: Connection, mapped: str, login: str, server: str = "loop") -> None:
    """A user mapping that logs in as ``login`` with no password (only a superuser may)."""
    admin.execute(
        text(
            f"CREATE USER MAPPING FOR {mapped} SERVER {server} "
            f"OPTIONS (user '{login}', password_required 'false')"
        )
    )


def foreign_invoices(admin: Connection, grantee: str, server: str = "loop") -> None:
    """``all_invoices``: a foreign table over ``invoices`` that ``grantee`` may read."""
    admin.execute(
        text(
            f"CREATE FOREIGN TABLE all_invoices (id uuid, tenant_id uuid) SERVER {server} "
            "OPTIONS (schema_name 'public', table_name 'invoices')"
        )
    )
    admin.execute(text(f"GRANT SELECT ON all_invoices TO {grantee}"))


def superuser(admin: Connection) -> str:
    """The superuser ``admin`` connects as (the bootstrap superuser of the test server)."""
    return str(admin.execute(text("SELECT current_user")).scalar_one())


def only(found: list[RoleProblem], rule: str, *parts: str) -> RoleProblem:
    """The one problem found; it has ``rule`` and names each of ``parts``."""
    assert [p.rule for p in found] == [rule], [p.message for p in found]
    for part in parts:
        assert part in found[0].message, (part, found[0].message)
    assert "Fix:" in found[0].message
    return found[0]


def test_a_loopback_mapping_to_a_bypassing_role_is_named_and_its_fix_works(
    admin: Connection,
    as_runtime: Callable[[], Connection],
    isolation_db: URL,
    runtime_role: str,
    bypass_role: str,
) -> None:
    loopback(admin, isolation_db)
    mapping(admin, f'"{runtime_role}"', bypass_role)
    foreign_invoices(admin, f'"{runtime_role}"')
    connection = as_runtime()
    assert connection.execute(text(OTHER_TENANT_ROWS)).scalar_one() > 0  # the leak is real
    problem = only(
        runtime_role_problems(connection, Base.metadata),
        "foreign-table-mapping",
        "foreign server loop",
        "may be this very database",
        "all_invoices",
        f"DROP USER MAPPING FOR {runtime_role} SERVER loop",
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON all_invoices FROM {runtime_role}",
    )
    assert runtime_role_problems(connection) == [problem]  # without models, the same
    admin.execute(text("RESET ROLE"))
    admin.execute(text(f'DROP USER MAPPING FOR "{runtime_role}" SERVER loop'))
    assert runtime_role_problems(as_runtime(), Base.metadata) == []


def test_a_public_mapping_is_named_once_the_role_can_reach_it(
    admin: Connection, as_runtime: Callable[[], Connection], isolation_db: URL, runtime_role: str
) -> None:
    loopback(admin, isolation_db)
    mapping(admin, "PUBLIC", superuser(admin))
    admin.execute(
        text(
            "CREATE FOREIGN TABLE all_invoices (id uuid, tenant_id uuid) SERVER loop "
            "OPTIONS (schema_name 'public', table_name 'invoices')"
        )
    )
    admin.execute(text("SAVEPOINT unreached"))
    assert runtime_role_problems(as_runtime(), Base.metadata) == []  # no privilege: no reach
    admin.execute(text("ROLLBACK TO SAVEPOINT unreached"))
    admin.execute(text("GRANT SELECT ON all_invoices TO PUBLIC"))
    only(
        runtime_role_problems(as_runtime(), Base.metadata),
        "foreign-table-mapping",
        "user mapping for PUBLIC",
        "DROP USER MAPPING FOR PUBLIC SERVER loop",
    )


def test_usage_on_the_server_is_reach_enough(
    admin: Connection, as_runtime: Callable[[], Connection], isolation_db: URL, runtime_role: str
) -> None:
    loopback(admin, isolation_db)
    login = superuser(admin)
    mapping(admin, f'"{runtime_role}"', login)
    admin.execute(text(f'GRANT USAGE ON FOREIGN SERVER loop TO "{runtime_role}"'))
    only(
        runtime_role_problems(as_runtime(), Base.metadata),
        "foreign-table-mapping",
        "has USAGE on the server",
        f"{login!r}, a superuser or BYPASSRLS role",  # USAGE lets the role read the mapping
        f"REVOKE USAGE ON FOREIGN SERVER loop FROM {runtime_role}",
    )


def test_a_mapping_of_a_role_the_runtime_role_is_a_member_of_is_named(
    admin: Connection, as_runtime: Callable[[], Connection], isolation_db: URL, runtime_role: str
) -> None:
    admin.execute(text("CREATE ROLE pgkeel_fdw_reader NOLOGIN"))
    admin.execute(text(f'GRANT pgkeel_fdw_reader TO "{runtime_role}"'))
    loopback(admin, isolation_db)
    mapping(admin, "pgkeel_fdw_reader", superuser(admin))
    foreign_invoices(admin, "pgkeel_fdw_reader")
    only(
        runtime_role_problems(as_runtime(), Base.metadata),
        "foreign-table-mapping",
        "user mapping for pgkeel_fdw_reader",
        "after SET ROLE pgkeel_fdw_reader",
    )


def test_a_remote_server_is_named_only_when_its_login_bypasses_here(
    admin: Connection,
    as_runtime: Callable[[], Connection],
    isolation_db: URL,
    runtime_role: str,
    bypass_role: str,
) -> None:
    for server, login in (("elsewhere", "reporting"), ("disguised", bypass_role)):
        loopback(admin, isolation_db, server, host="db.example.invalid")
        mapping(admin, f'"{runtime_role}"', login, server)
        admin.execute(text(f'GRANT USAGE ON FOREIGN SERVER {server} TO "{runtime_role}"'))
    only(
        runtime_role_problems(as_runtime(), Base.metadata),
        "foreign-table-mapping",
        "foreign server disguised",
        "may be another database",
        f"{bypass_role!r}, a superuser or BYPASSRLS role",
    )
