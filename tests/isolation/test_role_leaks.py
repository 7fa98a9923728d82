"""Leaks past row-level security that the runtime-role check must name, with the fix.

Each attack is built inside a transaction that is rolled back (roles, grants, views, policies
and ownership changes are transactional in PostgreSQL) by the superuser, then inspected and
exploited there as the runtime role with ``SET LOCAL ROLE``. Three roles take part: the runtime
role, a migration role that owns the tables (bound by FORCE ROW LEVEL SECURITY), and roles that
bypass row-level security (the superuser, a BYPASSRLS role).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from pgkeel.roles import RoleProblem, runtime_role_problems
from tests.isolation.conftest import Seed
from tests.isolation.models import Base

OTHER_TENANT_ROWS = "SELECT count(*) FROM {} WHERE tenant_id <> CAST(:tenant AS uuid)"


@pytest.fixture
def admin(owner_engine: Engine, seeded: Seed) -> Iterator[Connection]:
    """A superuser connection in a transaction that is rolled back."""
    with owner_engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def as_runtime(admin: Connection, runtime_role: str, seeded: Seed) -> Connection:
    """``admin`` after the attack: now the runtime role, acting as tenant 0."""

    def become() -> Connection:
        admin.execute(text(f'SET LOCAL ROLE "{runtime_role}"'))
        admin.execute(
            text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(seeded.tenants[0])}
        )
        return admin

    return become  # type: ignore[return-value]


def problems(connection: Connection, metadata: object = Base.metadata) -> list[RoleProblem]:
    return runtime_role_problems(connection, metadata)  # type: ignore[arg-type]


def other_rows(connection: Connection, relation: str, seeded: Seed) -> int:
    statement = text(OTHER_TENANT_ROWS.format(relation))
    return int(connection.execute(statement, {"tenant": str(seeded.tenants[0])}).scalar_one())


def only(found: list[RoleProblem], rule: str, *parts: str) -> RoleProblem:
    """The one problem found; it has ``rule`` and names each of ``parts``."""
    assert [p.rule for p in found] == [rule], [p.message for p in found]
    for part in parts:
        assert part in found[0].message, (part, found[0].message)
    assert "Fix:" in found[0].message
    return found[0]


def make_owner(admin: Connection, runtime_role: str) -> str:
    """A migration role that owns every table; FORCE ROW LEVEL SECURITY binds it."""
    admin.execute(text("CREATE ROLE pgkeel_leak_owner NOSUPERUSER NOBYPASSRLS"))
    admin.execute(text("GRANT CREATE ON SCHEMA public TO pgkeel_leak_owner"))
    for table in Base.metadata.sorted_tables:
        admin.execute(text(f"ALTER TABLE {table.name} OWNER TO pgkeel_leak_owner"))
    return "pgkeel_leak_owner"


# -- 1. objects that run with their owner's rights ---------------------------------------------


def test_the_untouched_runtime_role_passes(admin: Connection, as_runtime: object) -> None:
    as_runtime()  # type: ignore[operator]
    assert problems(admin) == []
    assert problems(admin, None) == []


def test_a_view_owned_by_the_superuser_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE VIEW all_invoices AS SELECT * FROM invoices"))
    admin.execute(text(f'GRANT SELECT ON all_invoices TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "all_invoices", seeded) > 0  # the leak is real
    only(
        problems(connection),
        "definer-view",
        "view 'public.all_invoices'",
        "'public.invoices'",
        "superuser or has BYPASSRLS",
        "ALTER VIEW public.all_invoices SET (security_invoker = true)",
    )


def test_a_view_owned_by_a_bypassrls_role_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE ROLE pgkeel_leak_system NOSUPERUSER BYPASSRLS"))
    admin.execute(text("GRANT SELECT ON customers TO pgkeel_leak_system"))
    admin.execute(text("GRANT CREATE ON SCHEMA public TO pgkeel_leak_system"))
    admin.execute(text("SET LOCAL ROLE pgkeel_leak_system"))
    admin.execute(text("CREATE VIEW customer_names AS SELECT tenant_id, name FROM customers"))
    admin.execute(text(f'GRANT SELECT ON customer_names TO "{runtime_role}"'))
    admin.execute(text("RESET ROLE"))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "customer_names", seeded) > 0
    only(problems(connection), "definer-view", "'pgkeel_leak_system'", "'public.customers'")


def test_a_definer_view_over_an_invoker_view_passes(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE VIEW inner_v WITH (security_invoker) AS SELECT * FROM invoices"))
    admin.execute(text("CREATE VIEW outer_v AS SELECT * FROM inner_v"))
    admin.execute(text(f'GRANT SELECT ON outer_v, inner_v TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "outer_v", seeded) == 0  # the inner view checks the caller
    assert problems(connection) == []


def test_a_definer_view_reached_only_through_another_view_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    owner = make_owner(admin, runtime_role)
    admin.execute(text("CREATE VIEW inner_v AS SELECT * FROM invoices"))  # not granted
    admin.execute(text(f"GRANT SELECT ON inner_v TO {owner}"))
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    admin.execute(text("CREATE VIEW outer_v AS SELECT * FROM inner_v"))
    admin.execute(text(f'GRANT SELECT ON outer_v TO "{runtime_role}"'))
    admin.execute(text("RESET ROLE"))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "outer_v", seeded) > 0
    only(problems(connection), "definer-view", "view 'public.inner_v'", "'public.invoices'")


def test_an_invoker_view_over_a_definer_view_names_the_inner_one(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE VIEW inner_v AS SELECT * FROM invoices"))
    admin.execute(text("CREATE VIEW outer_v WITH (security_invoker) AS SELECT * FROM inner_v"))
    admin.execute(text(f'GRANT SELECT ON outer_v, inner_v TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "outer_v", seeded) > 0
    only(problems(connection), "definer-view", "view 'public.inner_v'")


def test_a_security_invoker_view_passes(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(
        text("CREATE VIEW own_invoices WITH (security_invoker = on) AS SELECT * FROM invoices")
    )
    admin.execute(text(f'GRANT SELECT ON own_invoices TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "own_invoices", seeded) == 0
    assert problems(connection) == []


def test_a_view_not_granted_to_the_runtime_role_passes(
    admin: Connection, as_runtime: object
) -> None:
    admin.execute(text("CREATE VIEW admin_report AS SELECT * FROM invoices"))
    assert problems(as_runtime()) == []  # type: ignore[operator]


def test_a_view_owned_by_the_forced_table_owner_passes(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    owner = make_owner(admin, runtime_role)
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    admin.execute(text("CREATE VIEW owner_view AS SELECT * FROM invoices"))
    admin.execute(text(f'GRANT SELECT ON owner_view TO "{runtime_role}"'))
    admin.execute(text("RESET ROLE"))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "owner_view", seeded) == 0
    assert problems(connection) == []


def test_a_view_of_the_table_owner_without_force_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    owner = make_owner(admin, runtime_role)
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    admin.execute(text("CREATE VIEW owner_view AS SELECT * FROM invoices"))
    admin.execute(text(f'GRANT SELECT ON owner_view TO "{runtime_role}"'))
    admin.execute(text("RESET ROLE"))
    admin.execute(text("ALTER TABLE invoices NO FORCE ROW LEVEL SECURITY"))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "owner_view", seeded) > 0
    found = problems(connection)
    assert sorted(p.rule for p in found) == ["definer-view", "no-rls"]
    view = next(p for p in found if p.rule == "definer-view")
    assert "lacks FORCE ROW LEVEL SECURITY" in view.message


def test_a_materialized_view_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE MATERIALIZED VIEW invoice_totals AS SELECT * FROM invoices"))
    admin.execute(text(f'GRANT SELECT ON invoice_totals TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "invoice_totals", seeded) > 0
    only(
        problems(connection),
        "materialized-view",
        "materialized view 'public.invoice_totals'",
        "with whatever tenant was set then",
        "security_invoker = true",
        "REVOKE SELECT ON public.invoice_totals",
    )


def _refresh_as_tenant(admin: Connection, owner: str, tenant: object) -> None:
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    admin.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
    admin.execute(text("REFRESH MATERIALIZED VIEW invoice_totals"))
    admin.execute(text("SELECT set_config('app.tenant_id', '', true)"))
    admin.execute(text("RESET ROLE"))


@pytest.mark.parametrize("through", ["directly", "a view", "a security_invoker view"])
def test_a_materialized_view_of_a_forced_owner_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed, through: str
) -> None:
    """Owned by the migration role that FORCE binds, refreshed as tenant 1: tenant 0 reads it."""
    owner = make_owner(admin, runtime_role)
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    source = "invoices"
    if through != "directly":
        invoker = " WITH (security_invoker = true)" if "invoker" in through else ""
        admin.execute(text(f"CREATE VIEW invoice_source{invoker} AS SELECT * FROM invoices"))
        source = "invoice_source"
    admin.execute(text(f"CREATE MATERIALIZED VIEW invoice_totals AS SELECT * FROM {source}"))
    admin.execute(text(f'GRANT SELECT ON invoice_totals TO "{runtime_role}"'))
    admin.execute(text("RESET ROLE"))
    _refresh_as_tenant(admin, owner, seeded.tenants[1])
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "invoice_totals", seeded) > 0  # tenant 1's rows, to tenant 0
    only(
        problems(connection),
        "materialized-view",
        "materialized view 'public.invoice_totals'",
        "'public.invoices'",
    )


def test_a_materialized_view_reached_through_a_view_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    owner = make_owner(admin, runtime_role)
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    admin.execute(text("CREATE MATERIALIZED VIEW invoice_totals AS SELECT * FROM invoices"))
    admin.execute(
        text("CREATE VIEW totals WITH (security_invoker = true) AS SELECT * FROM invoice_totals")
    )
    admin.execute(text(f'GRANT SELECT ON totals TO "{runtime_role}"'))
    admin.execute(text("RESET ROLE"))
    _refresh_as_tenant(admin, owner, seeded.tenants[2])
    connection = as_runtime()  # type: ignore[operator]
    found = problems(connection)
    assert [p.rule for p in found] == ["materialized-view"], [p.message for p in found]


def test_a_materialized_view_the_runtime_role_cannot_read_passes(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    owner = make_owner(admin, runtime_role)
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    admin.execute(text("CREATE MATERIALIZED VIEW invoice_totals AS SELECT * FROM invoices"))
    admin.execute(text("CREATE MATERIALIZED VIEW plan_codes AS SELECT code FROM plans"))
    admin.execute(text(f'GRANT SELECT ON plan_codes TO "{runtime_role}"'))
    admin.execute(text("RESET ROLE"))
    connection = as_runtime()  # type: ignore[operator]
    assert problems(connection) == []


DEFINER = (
    "CREATE FUNCTION count_invoices() RETURNS bigint LANGUAGE sql {} "
    "AS 'SELECT count(*) FROM invoices'"
)


def test_a_security_definer_function_is_named(
    admin: Connection, as_runtime: object, seeded: Seed
) -> None:
    admin.execute(text(DEFINER.format("SECURITY DEFINER")))
    connection = as_runtime()  # type: ignore[operator]
    everyone = connection.execute(text("SELECT count_invoices()")).scalar_one()
    mine = connection.execute(text("SELECT count(*) FROM invoices")).scalar_one()
    assert everyone > mine  # the leak is real
    only(
        problems(connection),
        "definer-function",
        "SECURITY DEFINER function count_invoices()",
        "ALTER FUNCTION count_invoices() SECURITY INVOKER",
        "REVOKE EXECUTE ON FUNCTION count_invoices() FROM PUBLIC",
    )


def test_a_security_invoker_function_passes(admin: Connection, as_runtime: object) -> None:
    admin.execute(text(DEFINER.format("SECURITY INVOKER")))
    assert problems(as_runtime()) == []  # type: ignore[operator]


def test_a_definer_function_the_runtime_role_may_not_run_passes(
    admin: Connection, as_runtime: object
) -> None:
    admin.execute(text(DEFINER.format("SECURITY DEFINER")))
    admin.execute(text("REVOKE EXECUTE ON FUNCTION count_invoices() FROM PUBLIC"))
    assert problems(as_runtime()) == []  # type: ignore[operator]


def test_a_definer_function_of_the_forced_table_owner_passes(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    owner = make_owner(admin, runtime_role)
    admin.execute(text(DEFINER.format("SECURITY DEFINER")))
    admin.execute(text(f"ALTER FUNCTION count_invoices() OWNER TO {owner}"))
    connection = as_runtime()  # type: ignore[operator]
    everyone = connection.execute(text("SELECT count_invoices()")).scalar_one()
    assert everyone == connection.execute(text("SELECT count(*) FROM invoices")).scalar_one()
    assert problems(connection) == []


# -- 2. extra or rewritten policies ------------------------------------------------------------


def test_a_second_permissive_policy_is_named(
    admin: Connection, as_runtime: object, seeded: Seed
) -> None:
    admin.execute(text("CREATE POLICY read_all ON invoices FOR SELECT USING (true)"))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "invoices", seeded) > 0
    only(
        problems(connection),
        "extra-policy",
        "policy 'read_all'",
        "'public.invoices'",
        "DROP POLICY read_all ON public.invoices",
    )


def test_a_restrictive_policy_is_named_too(admin: Connection, as_runtime: object) -> None:
    admin.execute(text("CREATE POLICY narrow ON tags AS RESTRICTIVE USING (label <> '')"))
    only(problems(as_runtime()), "extra-policy", "RESTRICTIVE", "only narrows")  # type: ignore[operator]


@pytest.mark.parametrize(
    "alteration",
    [
        "ALTER POLICY tenant_isolation ON invoices USING (true)",
        "ALTER POLICY tenant_isolation ON invoices WITH CHECK (true)",
        "ALTER POLICY tenant_isolation ON invoices USING (tenant_id IS NOT NULL)",
        "ALTER POLICY tenant_isolation ON invoices TO pgkeel_leak_nobody",
    ],
    ids=["USING true", "WITH CHECK true", "IS NOT NULL", "other roles"],
)
def test_a_rewritten_tenant_policy_is_named(
    admin: Connection, as_runtime: object, alteration: str
) -> None:
    admin.execute(text("CREATE ROLE pgkeel_leak_nobody"))
    admin.execute(text(alteration))
    only(
        problems(as_runtime()),  # type: ignore[operator]
        "altered-policy",
        "policy 'tenant_isolation' on tenant table 'public.invoices' is not pgkeel's",
        "CREATE POLICY tenant_isolation ON public.invoices FOR ALL USING (tenant_id = ",
    )


def test_a_rewritten_policy_leaks(admin: Connection, as_runtime: object, seeded: Seed) -> None:
    admin.execute(text("ALTER POLICY tenant_isolation ON invoices USING (true)"))
    assert other_rows(as_runtime(), "invoices", seeded) > 0  # type: ignore[operator]


def test_the_policy_recreated_as_pgkeel_writes_it_passes(
    admin: Connection, as_runtime: object
) -> None:
    admin.execute(text("DROP POLICY tenant_isolation ON invoices"))
    admin.execute(
        text(
            "CREATE POLICY tenant_isolation ON invoices USING (tenant_id = (SELECT "
            "NULLIF(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = "
            "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))"
        )
    )
    assert problems(as_runtime()) == []  # type: ignore[operator]


# -- 3. role powers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("privilege", "why"),
    [
        ("TRUNCATE", "TRUNCATE ignores row-level security"),
        ("TRIGGER", "a trigger it creates"),
        ("REFERENCES", "probe which ids other tenants have"),
    ],
)
def test_dangerous_privileges_are_named(
    admin: Connection, as_runtime: object, runtime_role: str, privilege: str, why: str
) -> None:
    admin.execute(text(f'GRANT {privilege} ON customers TO "{runtime_role}"'))
    only(
        problems(as_runtime()),  # type: ignore[operator]
        "privilege",
        f"has {privilege} on tenant table 'public.customers'",
        why,
        f"REVOKE {privilege} ON public.customers FROM {runtime_role}",
    )


def test_a_privilege_granted_to_public_is_named(admin: Connection, as_runtime: object) -> None:
    admin.execute(text("GRANT REFERENCES (id) ON invoices TO PUBLIC"))
    only(problems(as_runtime()), "privilege", "has REFERENCES on", "PUBLIC")  # type: ignore[operator]


def test_truncate_empties_every_tenant(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text(f'GRANT TRUNCATE ON tags, customer_tags TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    connection.execute(text("TRUNCATE tags, customer_tags"))
    connection.execute(text("RESET ROLE"))
    assert connection.execute(text("SELECT count(*) FROM tags")).scalar_one() == 0


def test_createrole_is_named(admin: Connection, as_runtime: object, runtime_role: str) -> None:
    admin.execute(text(f'ALTER ROLE "{runtime_role}" CREATEROLE'))
    only(
        problems(as_runtime()),  # type: ignore[operator]
        "createrole",
        "has CREATEROLE",
        f"ALTER ROLE {runtime_role} NOCREATEROLE",
    )


def test_indirect_membership_in_a_bypassing_role_is_named(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE ROLE pgkeel_leak_system NOSUPERUSER BYPASSRLS"))
    admin.execute(text("CREATE ROLE pgkeel_leak_middle IN ROLE pgkeel_leak_system"))
    admin.execute(text(f'GRANT pgkeel_leak_middle TO "{runtime_role}"'))
    found = problems(as_runtime())  # type: ignore[operator]
    assert [p.rule for p in found] == ["member-of-bypassing-role"]
    assert "'pgkeel_leak_system'" in found[0].message
    assert "directly or through other roles" in found[0].message


def test_membership_in_a_createrole_role_is_named(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE ROLE pgkeel_leak_admin CREATEROLE"))
    admin.execute(text(f'GRANT pgkeel_leak_admin TO "{runtime_role}"'))
    only(problems(as_runtime()), "createrole", "'pgkeel_leak_admin'", "REVOKE pgkeel_leak_admin")  # type: ignore[operator]


# -- 10. partitions and INHERITS children ------------------------------------------------------


def test_an_inherits_child_without_rls_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE TABLE old_invoices () INHERITS (invoices)"))
    admin.execute(text(f'GRANT SELECT ON old_invoices TO "{runtime_role}"'))
    admin.execute(
        text(
            "INSERT INTO old_invoices (id, tenant_id, customer_id, number, amount) "
            "SELECT id, tenant_id, customer_id, number, amount FROM invoices WHERE tenant_id <> :t"
        ),
        {"t": seeded.tenants[0]},
    )
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "old_invoices", seeded) > 0
    assert other_rows(connection, "invoices", seeded) == 0  # through the parent: filtered
    only(
        problems(connection),
        "no-rls",
        "child (INHERITS) 'public.old_invoices' of tenant table 'public.invoices'",
        "ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY, policy 'tenant_isolation'",
        "ALTER TABLE public.old_invoices ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY; "
        "CREATE POLICY tenant_isolation ON public.old_invoices",
    )


PARTITIONED = [
    "CREATE TABLE events (tenant_id uuid NOT NULL, n int) PARTITION BY HASH (tenant_id)",
    "ALTER TABLE events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
    (
        "CREATE POLICY tenant_isolation ON events USING (tenant_id = (SELECT "
        "NULLIF(current_setting('app.tenant_id', true), '')::uuid)) WITH CHECK (tenant_id = "
        "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))"
    ),
    "CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 1, REMAINDER 0)",
    "INSERT INTO events SELECT tenant_id, number FROM invoices",
]


def test_a_partition_without_rls_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    for statement in PARTITIONED:
        admin.execute(text(statement))
    admin.execute(text(f'GRANT SELECT ON events, events_0 TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "events", seeded) == 0
    assert other_rows(connection, "events_0", seeded) > 0  # queried directly: every tenant
    only(
        problems(connection, None),
        "no-rls",
        "partition 'public.events_0' of tenant table 'public.events'",
        "queried by its own name",
    )


def test_a_partition_with_rls_and_the_policy_passes(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    for statement in PARTITIONED:
        admin.execute(text(statement))
    admin.execute(text("ALTER TABLE events_0 ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"))
    admin.execute(text(PARTITIONED[2].replace("ON events", "ON events_0")))
    admin.execute(text(f'GRANT SELECT ON events, events_0 TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "events_0", seeded) == 0
    assert problems(connection, None) == []


# -- 11. column and write privileges on definer views ------------------------------------------


def test_a_column_grant_on_a_definer_view_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE VIEW customer_emails AS SELECT tenant_id, email FROM customers"))
    admin.execute(text(f'GRANT SELECT (tenant_id, email) ON customer_emails TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert other_rows(connection, "customer_emails", seeded) > 0  # the leak is real
    for metadata in (Base.metadata, None):
        only(
            problems(connection, metadata),
            "definer-view",
            "view 'public.customer_emails' reads 'public.customers'",
            "which has SELECT on it, sees every tenant's rows",
            f"REVOKE SELECT ON public.customer_emails FROM {runtime_role}",
        )


@pytest.mark.parametrize("grant", ["UPDATE, DELETE", "UPDATE (amount)"])
def test_a_write_only_grant_on_a_definer_view_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed, grant: str
) -> None:
    admin.execute(text("CREATE VIEW invoice_amounts AS SELECT * FROM invoices"))
    admin.execute(text(f'GRANT {grant} ON invoice_amounts TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    found = problems(connection)
    updated = connection.execute(text("UPDATE invoice_amounts SET amount = 666")).rowcount
    connection.execute(text("RESET ROLE"))
    assert other_rows(connection, "invoices", seeded) > 0
    changed = "SELECT count(DISTINCT tenant_id) FROM invoices WHERE amount = 666"
    assert updated > 0
    assert connection.execute(text(changed)).scalar_one() == len(seeded.tenants)  # the leak
    privileges = "UPDATE, DELETE" if "DELETE" in grant else "UPDATE"
    only(
        found,
        "definer-view",
        "view 'public.invoice_amounts' reads 'public.invoices'",
        f"which has {privileges} on it, changes every tenant's rows",
        f"REVOKE {privileges} ON public.invoice_amounts FROM {runtime_role}",
    )


def test_a_write_grant_on_an_invoker_view_passes(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(
        text("CREATE VIEW invoice_amounts WITH (security_invoker) AS SELECT * FROM invoices")
    )
    admin.execute(text(f'GRANT UPDATE, DELETE ON invoice_amounts TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert problems(connection) == []
    connection.execute(text("UPDATE invoice_amounts SET amount = 666"))
    connection.execute(text("RESET ROLE"))
    changed = "SELECT count(DISTINCT tenant_id) FROM invoices WHERE amount = 666"
    assert connection.execute(text(changed)).scalar_one() == 1  # its own tenant only


# -- 12. rules: they run as the owner of their table -------------------------------------------

READ_ALL_RULE = (
    "CREATE RULE read_all AS ON INSERT TO {} DO INSTEAD SELECT tenant_id, email FROM customers"
)


def test_a_rule_on_a_plain_table_is_named(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE TABLE inbox (x int)"))
    admin.execute(text(f'GRANT INSERT ON inbox TO "{runtime_role}"'))
    admin.execute(text(READ_ALL_RULE.format("inbox")))
    connection = as_runtime()  # type: ignore[operator]
    rows = connection.execute(text("INSERT INTO inbox VALUES (1)")).all()
    assert len({tenant for tenant, _email in rows}) == 3  # the leak is real
    for metadata in (Base.metadata, None):
        only(
            problems(connection, metadata),
            "definer-rule",
            "rule read_all on table 'public.inbox' reaches 'public.customers'",
            "superuser or has BYPASSRLS",
            "which has INSERT on it",
            "DROP RULE read_all ON public.inbox",
            f"REVOKE INSERT ON public.inbox FROM {runtime_role}",
        )


def test_a_rule_on_a_security_invoker_view_is_named(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE TABLE inbox (x int)"))
    admin.execute(text("CREATE VIEW inbox_v WITH (security_invoker) AS SELECT * FROM inbox"))
    admin.execute(text(f'GRANT SELECT, INSERT ON inbox_v TO "{runtime_role}"'))
    admin.execute(text(READ_ALL_RULE.format("inbox_v")))
    connection = as_runtime()  # type: ignore[operator]
    rows = connection.execute(text("INSERT INTO inbox_v VALUES (1)")).all()
    assert len({tenant for tenant, _email in rows}) == 3
    only(
        problems(connection),
        "definer-rule",
        "rule read_all on view 'public.inbox_v'",
        "security_invoker applies to a view's query, not to its rules",
    )


def test_a_rule_the_runtime_role_cannot_fire_passes(admin: Connection, as_runtime: object) -> None:
    admin.execute(text("CREATE TABLE inbox (x int)"))
    admin.execute(text(READ_ALL_RULE.format("inbox")))
    assert problems(as_runtime()) == []  # type: ignore[operator]


def test_a_rule_of_the_forced_table_owner_passes(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    owner = make_owner(admin, runtime_role)
    admin.execute(text(f"SET LOCAL ROLE {owner}"))
    admin.execute(text("CREATE TABLE inbox (x int)"))
    admin.execute(text(f'GRANT INSERT ON inbox TO "{runtime_role}"'))
    admin.execute(text(READ_ALL_RULE.format("inbox")))
    admin.execute(text("RESET ROLE"))
    connection = as_runtime()  # type: ignore[operator]
    rows = connection.execute(text("INSERT INTO inbox VALUES (1)")).all()
    assert len({tenant for tenant, _email in rows}) == 1  # FORCE binds the owner
    assert problems(connection) == []


# -- 13. triggers: a definer function fires without EXECUTE ------------------------------------

FILL = (
    "CREATE FUNCTION fill_amount() RETURNS trigger LANGUAGE plpgsql {} AS $$ BEGIN "
    "NEW.amount := (SELECT count(*) FROM customers); "
    "UPDATE customers SET name = 'touched' WHERE id = NEW.customer_id; RETURN NEW; END $$"
)
FILL_TRIGGER = "CREATE TRIGGER fill BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION fill_amount()"
NEW_INVOICE = (
    "INSERT INTO invoices (id, customer_id, number, amount, created_at, updated_at) "
    "VALUES (gen_random_uuid(), :customer, 5, 0, now(), now()) RETURNING amount"
)


def test_a_definer_trigger_is_named_though_execute_is_revoked(
    admin: Connection, as_runtime: object, seeded: Seed
) -> None:
    admin.execute(text(FILL.format("SECURITY DEFINER")))
    admin.execute(text("REVOKE EXECUTE ON FUNCTION fill_amount() FROM PUBLIC"))
    admin.execute(text(FILL_TRIGGER.format("invoices")))
    connection = as_runtime()  # type: ignore[operator]
    found = problems(connection)
    assert found == problems(connection, None)
    mine = connection.execute(text("SELECT count(*) FROM customers")).scalar_one()
    theirs = seeded.customers[1, "live"]
    amount = connection.execute(text(NEW_INVOICE), {"customer": theirs}).scalar_one()
    connection.execute(text("RESET ROLE"))
    name = "SELECT name FROM customers WHERE id = :id"
    assert amount > mine  # it counted every tenant's customers
    assert connection.execute(text(name), {"id": theirs}).scalar_one() == "touched"
    only(
        found,
        "definer-trigger",
        "trigger fill on 'public.invoices' runs SECURITY DEFINER function fill_amount()",
        "fires on role",
        "'s INSERT there",
        "REVOKE EXECUTE does not stop a trigger",
        "ALTER FUNCTION fill_amount() SECURITY INVOKER",
        "DROP TRIGGER fill ON public.invoices",
    )


def test_an_invoker_trigger_passes(admin: Connection, as_runtime: object, seeded: Seed) -> None:
    admin.execute(text(FILL.format("SECURITY INVOKER")))
    admin.execute(text(FILL_TRIGGER.format("invoices")))
    connection = as_runtime()  # type: ignore[operator]
    assert problems(connection) == []
    mine = connection.execute(text("SELECT count(*) FROM customers")).scalar_one()
    amount = connection.execute(
        text(NEW_INVOICE), {"customer": seeded.customers[0, "live"]}
    ).scalar_one()
    assert amount == mine


def test_a_definer_trigger_on_a_table_the_runtime_role_cannot_write_passes(
    admin: Connection, as_runtime: object
) -> None:
    admin.execute(text("CREATE TABLE archive (amount bigint, customer_id uuid)"))
    admin.execute(text(FILL.format("SECURITY DEFINER")))
    admin.execute(text("REVOKE EXECUTE ON FUNCTION fill_amount() FROM PUBLIC"))
    admin.execute(text(FILL_TRIGGER.format("archive")))
    assert problems(as_runtime()) == []  # type: ignore[operator]


def test_a_definer_trigger_written_through_a_view_is_named(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE TABLE archive (amount bigint, customer_id uuid)"))
    admin.execute(text("CREATE VIEW archive_v AS SELECT * FROM archive"))
    admin.execute(text(f'GRANT INSERT ON archive_v TO "{runtime_role}"'))
    admin.execute(text(FILL.format("SECURITY DEFINER")))
    admin.execute(text("REVOKE EXECUTE ON FUNCTION fill_amount() FROM PUBLIC"))
    admin.execute(text(FILL_TRIGGER.format("archive")))
    connection = as_runtime()  # type: ignore[operator]
    connection.execute(text("INSERT INTO archive_v (amount) VALUES (0)"))
    connection.execute(text("RESET ROLE"))
    stored = connection.execute(text("SELECT amount FROM archive")).scalar_one()
    assert stored == connection.execute(text("SELECT count(*) FROM customers")).scalar_one()
    connection.execute(text(f'SET LOCAL ROLE "{runtime_role}"'))
    only(
        problems(connection),
        "definer-trigger",
        "trigger fill on 'public.archive'",
        "writes it through a view or rule",
    )


# -- 14. parents of tenant tables --------------------------------------------------------------


@pytest.mark.parametrize("grant", ["SELECT", "UPDATE (email)"])
def test_an_inherits_parent_without_rls_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed, grant: str
) -> None:
    admin.execute(text("CREATE TABLE contacts (email varchar(255))"))
    admin.execute(text("ALTER TABLE customers INHERIT contacts"))
    admin.execute(text(f'GRANT {grant} ON contacts TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    own = connection.execute(text("SELECT count(*) FROM customers")).scalar_one()
    if grant == "SELECT":
        reached = len(connection.execute(text("SELECT email FROM contacts")).all())
    else:
        reached = connection.execute(text("UPDATE contacts SET email = 'x'")).rowcount
    assert reached > own  # every tenant's customers, through the parent
    for metadata in (Base.metadata, None):
        only(
            problems(connection, metadata),
            "inherits-parent",
            "parent (INHERITS) 'public.contacts' of tenant table 'public.customers'",
            f"has {grant.split(maxsplit=1)[0]} on it",
            "'public.contacts' lacks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
            "ALTER TABLE public.contacts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
            "ALTER TABLE public.customers NO INHERIT public.contacts",
        )


def test_a_grandparent_with_a_foreign_policy_is_named(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE TABLE contacts (email varchar(255))"))
    admin.execute(text("CREATE TABLE people () INHERITS (contacts)"))
    admin.execute(text("ALTER TABLE customers INHERIT people"))
    admin.execute(text("ALTER TABLE contacts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"))
    admin.execute(text("CREATE POLICY open ON contacts USING (true)"))
    admin.execute(text(f'GRANT SELECT ON contacts TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert len(connection.execute(text("SELECT email FROM contacts")).all()) == 6
    only(
        problems(connection),
        "inherits-parent",
        "'public.contacts' of tenant table 'public.customers'",
        "has policy 'open', which is not pgkeel's",
        "ALTER TABLE public.people NO INHERIT public.contacts",
    )


def test_an_inherits_parent_with_forced_rls_passes(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE TABLE contacts (email varchar(255))"))
    admin.execute(text("ALTER TABLE customers INHERIT contacts"))
    admin.execute(text("ALTER TABLE contacts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"))
    admin.execute(text(f'GRANT SELECT ON contacts TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert connection.execute(text("SELECT email FROM contacts")).all() == []  # no policy: none
    assert problems(connection) == []


def test_a_definer_view_over_an_inherits_parent_is_named(
    admin: Connection, as_runtime: object, runtime_role: str
) -> None:
    admin.execute(text("CREATE TABLE contacts (email varchar(255))"))
    admin.execute(text("ALTER TABLE customers INHERIT contacts"))
    admin.execute(text("CREATE VIEW contact_list AS SELECT email FROM contacts"))
    admin.execute(text(f'GRANT SELECT ON contact_list TO "{runtime_role}"'))
    connection = as_runtime()  # type: ignore[operator]
    assert len(connection.execute(text("SELECT email FROM contact_list")).all()) == 6
    only(
        problems(connection),
        "definer-view",
        "view 'public.contact_list' reads 'public.contacts' (a parent of a tenant table",
        "superuser or has BYPASSRLS",
    )


# -- 15. roles that read the server's files ----------------------------------------------------

HEAP_EMAILS = "COPY heap_lines FROM PROGRAM 'grep -a -o \"[a-z]*@[0-9]\\.test\" {}'"


def test_membership_in_pg_execute_server_program_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, seeded: Seed
) -> None:
    admin.execute(text("CREATE ROLE pgkeel_leak_ops IN ROLE pg_execute_server_program"))
    admin.execute(text(f'GRANT pgkeel_leak_ops TO "{runtime_role}"'))
    path = admin.execute(text("SELECT pg_relation_filepath('customers')")).scalar_one()
    admin.execute(text("CHECKPOINT"))
    connection = as_runtime()  # type: ignore[operator]
    connection.execute(text("CREATE TEMP TABLE heap_lines (line text)"))
    connection.execute(text(HEAP_EMAILS.format(path)))
    lines = connection.execute(text("SELECT line FROM heap_lines")).scalars().all()
    assert "live@1.test" in lines  # another tenant's row, read from the table's file
    only(
        problems(connection),
        "member-of-server-access-role",
        "(directly or through other roles) of 'pg_execute_server_program'",
        "COPY ... FROM PROGRAM",
        f"REVOKE pg_execute_server_program FROM {runtime_role}",
    )


@pytest.mark.parametrize("server_role", ["pg_read_server_files", "pg_write_server_files"])
def test_membership_in_a_server_files_role_is_named(
    admin: Connection, as_runtime: object, runtime_role: str, server_role: str
) -> None:
    admin.execute(text(f'GRANT {server_role} TO "{runtime_role}"'))
    only(
        problems(as_runtime()),  # type: ignore[operator]
        "member-of-server-access-role",
        f"of {server_role!r}",
        "any file of the database server",
        f"REVOKE {server_role} FROM {runtime_role}",
    )
