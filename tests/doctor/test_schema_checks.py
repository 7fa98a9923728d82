"""Each schema check, shown by creating its problem for real and finding it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy.engine import make_url

from pgkeel.database import conninfo
from pgkeel.doctor import Finding, Report, diagnose
from pgkeel.doctor.context import Check, Problem
from pgkeel.doctor.run import CHECKS
from tests.doctor.conftest import execute, found

if TYPE_CHECKING:
    from pgkeel.doctor.context import Context


def only(report: Report, check: str) -> list[Finding]:
    return [finding for finding in report.findings if finding.check == check]


def test_a_foreign_key_without_an_index_is_found_with_the_index_to_create(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE customers (id bigint PRIMARY KEY)",
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers)",
    )
    [finding] = only(found(doctor_url), "fk-without-index")
    assert finding.severity == "error"
    assert finding.object == "public.orders (customer_id)"
    assert finding.fix == (
        "CREATE INDEX CONCURRENTLY idx_orders_customer_id ON public.orders (customer_id);"
    )
    execute(doctor_url, finding.fix)
    assert only(found(doctor_url), "fk-without-index") == []


def test_an_index_that_leads_with_the_key_covers_it_a_partial_one_does_not(
    doctor_url: str,
) -> None:
    execute(
        doctor_url,
        "CREATE TABLE a (id bigint PRIMARY KEY)",
        "CREATE TABLE b (id bigint PRIMARY KEY, a_id bigint REFERENCES a, n int)",
        "CREATE TABLE c (id bigint PRIMARY KEY, a_id bigint REFERENCES a, n int)",
        "CREATE INDEX ON b (a_id, n)",
        "CREATE INDEX ON c (a_id) WHERE n > 0",
    )
    assert [f.object for f in only(found(doctor_url), "fk-without-index")] == ["public.c (a_id)"]


def test_duplicate_and_prefix_indexes_are_found_but_not_the_constraint_behind_them(
    doctor_url: str,
) -> None:
    execute(
        doctor_url,
        "CREATE TABLE t (id bigint PRIMARY KEY, a int, b int, c text)",
        "CREATE INDEX t_a ON t (a)",
        "CREATE INDEX t_a_b ON t (a, b)",
        "CREATE INDEX t_a_b_again ON t (a, b)",
        "CREATE INDEX t_id ON t (id)",
        "CREATE INDEX t_c_lower ON t (lower(c))",
        "CREATE INDEX t_c ON t (c)",
        "CREATE UNIQUE INDEX t_b_unique ON t (b)",
        "CREATE INDEX t_b_a ON t (b, a)",
    )
    findings = only(found(doctor_url), "duplicate-index")
    assert {f.object: f.evidence["covered_by"] for f in findings} == {
        "public.t_a": "CREATE INDEX t_a_b ON public.t USING btree (a, b)",
        "public.t_a_b_again": "CREATE INDEX t_a_b ON public.t USING btree (a, b)",
        "public.t_id": "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
    }
    assert findings[0].fix == "DROP INDEX CONCURRENTLY public.t_a;"


def test_an_unused_index_is_found_once_statistics_are_old_enough(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE t (id bigint PRIMARY KEY, a int, p bigint REFERENCES t)",
        "CREATE INDEX t_a ON t (a)",
        "CREATE INDEX t_p ON t (p)",
    )
    report = found(doctor_url, unused_index_min_stats_days=0)
    [finding] = only(report, "unused-index")
    assert finding.object == "public.t_a"
    assert finding.evidence["scans"] == 0
    assert finding.fix.startswith("DROP INDEX CONCURRENTLY public.t_a;")
    young = found(doctor_url, unused_index_min_stats_days=10_000)
    assert only(young, "unused-index") == []
    assert "unused-index" in [note.check for note in young.notes]


def test_an_invalid_index_left_by_a_failed_concurrent_build_is_found(doctor_url: str) -> None:
    execute(doctor_url, "CREATE TABLE t (id bigint PRIMARY KEY, email text)")
    execute(doctor_url, "INSERT INTO t VALUES (1, 'a'), (2, 'a')")
    with pytest.raises(Exception, match="could not create unique index"):
        execute(doctor_url, "CREATE UNIQUE INDEX CONCURRENTLY t_email ON t (email)")
    [finding] = only(found(doctor_url), "invalid-index")
    assert finding.object == "public.t_email"
    assert finding.evidence["unique"] is True
    assert finding.fix.startswith("REINDEX INDEX CONCURRENTLY public.t_email;")


def test_a_constraint_added_not_valid_is_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE t (id bigint PRIMARY KEY, n int)",
        "ALTER TABLE t ADD CONSTRAINT n_positive CHECK (n > 0) NOT VALID",
    )
    [finding] = only(found(doctor_url), "invalid-constraint")
    assert finding.fix.startswith("ALTER TABLE public.t VALIDATE CONSTRAINT n_positive;")
    execute(doctor_url, "ALTER TABLE t VALIDATE CONSTRAINT n_positive")
    assert only(found(doctor_url), "invalid-constraint") == []


def test_a_table_without_a_primary_key_is_found_not_its_partitions(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE events (at timestamptz, body text) PARTITION BY RANGE (at)",
        "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') "
        "TO ('2027-01-01')",
        "CREATE TABLE keyed (id bigint PRIMARY KEY)",
    )
    assert [f.object for f in only(found(doctor_url), "no-primary-key")] == ["public.events"]


def test_timestamp_without_time_zone_columns_are_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        'CREATE TABLE "Odd Name" (id bigint PRIMARY KEY, at timestamp, ok timestamptz, '
        "history timestamp[])",
    )
    findings = only(found(doctor_url), "naive-timestamp")
    assert [f.object for f in findings] == ['public."Odd Name".at', 'public."Odd Name".history']
    assert 'ALTER TABLE public."Odd Name" ALTER COLUMN at TYPE timestamptz' in findings[0].fix


def test_sequences_and_identities_past_the_threshold_are_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE serials (id serial PRIMARY KEY)",
        "CREATE TABLE idents (id smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)",
        "CREATE TABLE young (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)",
        "CREATE SEQUENCE loose AS integer",
        "SELECT setval('serials_id_seq', 2000000000)",
        "SELECT setval(pg_get_serial_sequence('idents', 'id'), 30000)",
        "SELECT setval(pg_get_serial_sequence('young', 'id'), 2000000000)",
        "SELECT setval('loose', 1700000000)",
    )
    findings = {f.object: f for f in only(found(doctor_url), "sequence-near-limit")}
    assert set(findings) == {"public.serials_id_seq", "public.idents_id_seq", "public.loose"}
    assert findings["public.serials_id_seq"].evidence["used_ratio"] == pytest.approx(0.9313, 1e-3)
    assert findings["public.idents_id_seq"].evidence["column_type"] == "smallint"
    assert "ALTER TABLE public.serials ALTER COLUMN id TYPE bigint" in (
        findings["public.serials_id_seq"].fix
    )


def test_an_integer_key_without_a_sequence_near_its_limit_is_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE accounts (id integer PRIMARY KEY)",
        "CREATE TABLE entries (id bigint PRIMARY KEY, account_id integer REFERENCES accounts)",
        "CREATE INDEX ON entries (account_id)",
        "INSERT INTO accounts VALUES (1), (1900000000)",
        "INSERT INTO entries VALUES (1, 1900000000)",
    )
    findings = only(found(doctor_url), "integer-key-near-limit")
    assert [f.object for f in findings] == ["public.accounts.id"]
    assert findings[0].evidence["largest"] == 1900000000
    assert findings[0].evidence["estimated"] is False


def test_a_tenant_table_without_forced_rls_and_policy_is_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE notes (id bigint PRIMARY KEY, tenant_id uuid NOT NULL)",
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY",
    )
    [finding] = only(found(doctor_url), "tenant-table-without-rls")
    assert finding.evidence == {"rls_enabled": True, "rls_forced": False, "policy": False}
    assert "FORCE ROW LEVEL SECURITY" in finding.message
    execute(doctor_url, *finding.fix.split("; "))
    assert only(found(doctor_url), "tenant-table-without-rls") == []


def test_a_partition_of_a_protected_tenant_table_needs_its_own_rls(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE events (id bigint, tenant_id uuid NOT NULL, PRIMARY KEY (tenant_id, id)) "
        "PARTITION BY HASH (tenant_id)",
        "CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 1, REMAINDER 0)",
        "ALTER TABLE events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
        "CREATE POLICY tenant_isolation ON events USING (true)",
    )
    findings = only(found(doctor_url), "tenant-table-without-rls")
    assert [f.object for f in findings] == ["public.events_0"]


def test_a_foreign_key_column_is_not_probed_its_values_are_the_referenced_keys(
    doctor_url: str,
) -> None:
    execute(
        doctor_url,
        "CREATE TABLE accounts (id integer PRIMARY KEY)",
        "CREATE TABLE entries (account_id integer PRIMARY KEY REFERENCES accounts)",
        "INSERT INTO accounts VALUES (1900000000)",
        "INSERT INTO entries VALUES (1900000000)",
    )
    findings = only(found(doctor_url), "integer-key-near-limit")
    assert [f.object for f in findings] == ["public.accounts.id"]


def _index_scans(url: str, index: str) -> int:
    time.sleep(0.5)  # the doctor's session flushes its statistics as it ends
    with psycopg.connect(conninfo(make_url(url))) as connection:
        row = connection.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", [index]
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_an_analyzed_integer_key_is_read_from_its_statistics_not_scanned(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE accounts (id integer PRIMARY KEY)",
        "INSERT INTO accounts SELECT g FROM generate_series(1899999000, 1900000000) g",
        "ANALYZE accounts",
    )
    before = _index_scans(doctor_url, "accounts_pkey")
    [finding] = only(found(doctor_url), "integer-key-near-limit")
    assert _index_scans(doctor_url, "accounts_pkey") == before
    assert finding.evidence["largest"] == 1900000000
    assert finding.evidence["estimated"] is True
    assert "statistics" in finding.message


def test_probing_integer_keys_keeps_no_lock_on_the_tables_it_probed(doctor_url: str) -> None:
    """Each probe's locks go with its savepoint: thousands of tables cannot exhaust lock memory."""
    execute(
        doctor_url,
        *[f"CREATE TABLE t{n} (id integer PRIMARY KEY)" for n in range(20)],
        "INSERT INTO t7 VALUES (2000000000)",
    )
    held: list[int] = []

    def count_locks(ctx: Context) -> list[Problem]:
        held.append(
            int(
                ctx.value(  # type: ignore[arg-type]
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.pid = pg_backend_pid() AND c.relname ~ '^t[0-9]+'"
                )
            )
        )
        return []

    checks = (*[c for c in CHECKS if c.id == "integer-key-near-limit"],)
    report = diagnose(
        doctor_url, checks=(*checks, Check("locks", "schema", "error", "", count_locks))
    )
    assert [f.object for f in report.findings] == ["public.t7.id"]
    assert held == [0]


def test_a_locked_table_is_skipped_alone_by_the_integer_key_probe(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE a (id int PRIMARY KEY)",
        "CREATE TABLE b (id int PRIMARY KEY)",
        "INSERT INTO b VALUES (1900000000)",
    )
    with psycopg.connect(conninfo(make_url(doctor_url))) as migration:
        migration.execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        report = found(doctor_url, lock_timeout_ms=200)
        migration.rollback()
    assert [f.object for f in only(report, "integer-key-near-limit")] == ["public.b.id"]
    [note] = [n for n in report.notes if n.check == "integer-key-near-limit"]
    assert "1 key columns were skipped (for example in public.a)" in note.reason


def test_a_sequence_starting_at_its_negative_minimum_is_measured_from_there(
    doctor_url: str,
) -> None:
    execute(
        doctor_url,
        "CREATE SEQUENCE wide AS integer MINVALUE -2147483648 START -2147483648",
        "SELECT nextval('wide')",
        "SELECT setval('wide', -2147483000)",
    )
    assert only(found(doctor_url), "sequence-near-limit") == []
    execute(doctor_url, "SELECT setval('wide', 1500000000)")
    [finding] = only(found(doctor_url), "sequence-near-limit")
    assert finding.evidence["used_ratio"] == pytest.approx(0.8493, 1e-3)
