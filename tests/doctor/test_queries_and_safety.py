"""Query statistics, sizes, privileges, the runtime role, and the doctor's own safety."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from pgkeel.doctor import DoctorError, Thresholds, diagnose, render
from pgkeel.doctor.context import Check, Problem
from pgkeel.doctor.run import CHECKS
from tests.doctor.conftest import as_role, execute, found, server_setting
from tests.doctor.test_activity_checks import connect
from tests.doctor.test_schema_checks import only


def test_slow_and_top_queries_come_from_pg_stat_statements(doctor_url: str) -> None:
    if "pg_stat_statements" not in server_setting(doctor_url, "shared_preload_libraries"):
        pytest.skip("needs the doctor's server (pg_stat_statements preloaded)")
    execute(doctor_url, "CREATE EXTENSION pg_stat_statements", "SELECT pg_stat_statements_reset()")
    execute(doctor_url, *["SELECT pg_sleep(0.025)"] * 3, "SELECT 1")
    report = found(doctor_url, slow_query_ms=20, slow_query_calls=3)
    [finding] = only(report, "slow-query")
    assert finding.evidence["query"] == "SELECT pg_sleep($1)"
    assert finding.evidence["calls"] == 3
    assert finding.evidence["mean_ms"] >= 20
    assert report.top_by_total[0].query == "SELECT pg_sleep($1)"
    assert report.top_by_mean[0].query == "SELECT pg_sleep($1)"
    assert 0 < report.top_by_total[0].share <= 1
    assert not any("pgkeel doctor" in q.query for q in report.top_by_total)
    assert only(found(doctor_url), "slow-query") == []  # 3 calls: under the default 100


def test_without_pg_stat_statements_the_report_says_how_to_enable_it(doctor_url: str) -> None:
    report = found(doctor_url)
    note = next(note for note in report.notes if note.check == "slow-query")
    assert note.status == "not-applicable"
    assert "shared_preload_libraries = 'pg_stat_statements'" in note.reason
    assert "CREATE EXTENSION pg_stat_statements" in note.reason
    assert report.top_by_total == report.top_by_mean == ()


def test_the_largest_tables_and_indexes_are_listed(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE small (id int PRIMARY KEY)",
        "CREATE TABLE large (id int PRIMARY KEY, pad text)",
        "INSERT INTO large SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g",
    )
    report = found(doctor_url)
    assert [t.name for t in report.largest_tables] == ["public.large", "public.small"]
    assert report.largest_indexes[0].name == "public.large_pkey"
    assert report.largest_indexes[0].table == "public.large"
    assert report.database_bytes > report.largest_tables[0].bytes > 2_000_000


def test_a_role_without_pg_monitor_gets_a_message_naming_the_privilege(doctor_url: str) -> None:
    role = f"nomon_{doctor_url.rsplit('_', 1)[-1]}"
    execute(doctor_url, f"CREATE ROLE {role} LOGIN")
    try:
        with pytest.raises(DoctorError, match=f"GRANT pg_monitor TO {role};"):
            diagnose(as_role(doctor_url, role))
    finally:
        execute(doctor_url, f"DROP ROLE {role}")


def test_a_pg_monitor_role_that_owns_nothing_runs_every_check(doctor_url: str) -> None:
    role = f"monitor_{doctor_url.rsplit('_', 1)[-1]}"
    execute(
        doctor_url,
        "CREATE TABLE p (id bigint PRIMARY KEY)",
        "CREATE TABLE c (id serial PRIMARY KEY, p_id bigint REFERENCES p, at timestamp)",
        f"CREATE ROLE {role} LOGIN IN ROLE pg_monitor",
    )
    try:
        report = diagnose(as_role(doctor_url, role))
    finally:
        execute(doctor_url, f"DROP ROLE {role}")
    assert {"fk-without-index", "naive-timestamp"} <= set(report.checks_found())
    not_run = {note.check: note.reason for note in report.notes if note.status == "not-run"}
    assert set(not_run) == {"sequence-near-limit"}  # sequence values need SELECT on them
    assert "GRANT SELECT ON ALL SEQUENCES" in not_run["sequence-near-limit"]


def test_the_runtime_role_problems_are_findings_with_runtime_url(doctor_url: str) -> None:
    role = f"app_{doctor_url.rsplit('_', 1)[-1]}"
    execute(
        doctor_url,
        f"CREATE ROLE {role} LOGIN BYPASSRLS",
        "CREATE TABLE items (id bigint PRIMARY KEY, tenant_id uuid)",
        f"ALTER TABLE items OWNER TO {role}",
    )
    try:
        report = diagnose(doctor_url, runtime_url=as_role(doctor_url, role))
    finally:
        execute(doctor_url, "DROP TABLE items", f"DROP ROLE {role}")
    runtime = only(report, "runtime-role")
    assert [f.evidence["rule"] for f in runtime] == ["bypassrls", "owner"]
    assert runtime[0].fix.startswith(f"ALTER ROLE {role} NOBYPASSRLS")
    assert [f.object for f in only(report, "tenant-table-without-rls")] == ["public.items"]
    assert "runtime-role" not in [note.check for note in report.notes]
    assert "runtime-role" in [note.check for note in found(doctor_url).notes]


def test_the_runtime_role_rules_of_server_files_triggers_and_parents_are_reported(
    doctor_url: str,
) -> None:
    role = f"files_{doctor_url.rsplit('_', 1)[-1]}"
    execute(
        doctor_url,
        f"CREATE ROLE {role} LOGIN IN ROLE pg_read_server_files",
        "CREATE TABLE items (id bigint PRIMARY KEY, tenant_id uuid)",
        "ALTER TABLE items ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
        "CREATE TABLE listed (id bigint)",
        "ALTER TABLE items INHERIT listed",
        "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
        "AS $$ BEGIN RETURN NEW; END $$",
        "REVOKE EXECUTE ON FUNCTION stamp() FROM PUBLIC",
        "CREATE TRIGGER stamp BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION stamp()",
        f"GRANT INSERT ON items TO {role}",
        f"GRANT SELECT ON listed TO {role}",
    )
    try:
        report = diagnose(doctor_url, runtime_url=as_role(doctor_url, role))
    finally:
        execute(doctor_url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")
    rules = [f.evidence["rule"] for f in only(report, "runtime-role")]
    assert rules == ["member-of-server-access-role", "inherits-parent", "definer-trigger"]
    fixes = [f.fix for f in only(report, "runtime-role")]
    assert fixes[0] == f"REVOKE pg_read_server_files FROM {role} (and from the roles between them)."
    assert "ALTER TABLE public.items NO INHERIT public.listed" in fixes[1]
    assert fixes[2].startswith("ALTER FUNCTION stamp() SECURITY INVOKER")
    for output_format in ("text", "json", "html"):
        shown = render(report, output_format)
        assert all(rule in shown for rule in rules), output_format


def test_the_doctor_runs_in_a_read_only_transaction(doctor_url: str) -> None:
    def write(ctx: object) -> list[Problem]:
        ctx.rows("CREATE TABLE written_by_doctor (id int)")  # type: ignore[attr-defined]
        return []

    with pytest.raises(DBAPIError, match="read-only transaction"):
        diagnose(doctor_url, checks=(Check("write", "schema", "error", "writes", write),))


def test_only_access_share_locks_it_runs_beside_exclusive_locks_on_every_table(
    doctor_url: str,
) -> None:
    execute(
        doctor_url,
        "CREATE TABLE a (id int PRIMARY KEY, n int)",
        "CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a)",
        "INSERT INTO a VALUES (1900000000, 1)",
    )
    with connect(doctor_url, autocommit=False) as locker:
        locker.execute("LOCK TABLE a, b IN EXCLUSIVE MODE")
        report = found(doctor_url, lock_timeout_ms=200)
        locker.rollback()
    assert [note for note in report.notes if note.status == "not-run"] == []
    assert {"fk-without-index", "integer-key-near-limit"} <= set(report.checks_found())


def test_a_table_under_an_access_exclusive_lock_makes_checks_not_run_never_hang(
    doctor_url: str,
) -> None:
    execute(doctor_url, "CREATE TABLE a (id int PRIMARY KEY)", "INSERT INTO a VALUES (1900000000)")
    with connect(doctor_url, autocommit=False) as migration:
        migration.execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        report = found(doctor_url, lock_timeout_ms=200)
        migration.rollback()
    not_run = {note.check: note.reason for note in report.notes if note.status == "not-run"}
    assert "integer-key-near-limit" in not_run
    assert "lock_timeout_ms = 200" in not_run["integer-key-near-limit"]


def test_every_check_id_is_unique_and_documented() -> None:
    ids = [check.id for check in CHECKS]
    assert len(ids) == len(set(ids))
    page = (__import__("pathlib").Path(__file__).parents[2] / "docs" / "doctor.md").read_text()
    assert [check_id for check_id in ids if f"`{check_id}`" not in page] == []


def test_thresholds_default_to_the_documented_values() -> None:
    assert Thresholds().cache_hit_ratio_min == 0.95
    assert Thresholds().sequence_max_ratio == 0.75


def test_a_table_never_vacuumed_or_analyzed_is_measured_among_the_largest(
    doctor_url: str,
) -> None:
    """Its planner page count is 0: it must not lose its place to many small analyzed tables."""
    small = [f"s{n}" for n in range(3 * Thresholds().top + 5)]
    execute(
        doctor_url,
        *[f"CREATE TABLE {name} (id int) WITH (autovacuum_enabled = false)" for name in small],
        *[f"INSERT INTO {name} VALUES (1)" for name in small],
        f"VACUUM ANALYZE {', '.join(small)}",
        "CREATE TABLE fresh (id int, pad text) WITH (autovacuum_enabled = false)",
        "INSERT INTO fresh SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g",
    )
    assert found(doctor_url).largest_tables[0].name == "public.fresh"


def test_fixes_quote_role_and_table_names_that_need_it(doctor_url: str) -> None:
    role = f"Svc-User {doctor_url.rsplit('_', 1)[-1]}"
    quoted = '"' + role + '"'
    execute(
        doctor_url,
        f"CREATE ROLE {quoted} LOGIN BYPASSRLS",
        'CREATE SCHEMA "Sales Dept"',
        'CREATE TABLE "Sales Dept"."Tenant Tbl" (id bigint PRIMARY KEY, tenant_id uuid)',
        f'ALTER TABLE "Sales Dept"."Tenant Tbl" OWNER TO {quoted}',
    )
    try:
        report = diagnose(doctor_url, runtime_url=as_role(doctor_url, role))
        fixes = {f.evidence["rule"]: f.fix for f in only(report, "runtime-role")}
        assert fixes["bypassrls"].startswith(f"ALTER ROLE {quoted} NOBYPASSRLS")
        assert f'ON "Sales Dept"."Tenant Tbl" TO {quoted}' in fixes["owner"]
        execute(doctor_url, fixes["bypassrls"].partition(", or")[0])
    finally:
        execute(doctor_url, 'DROP SCHEMA "Sales Dept" CASCADE', f"DROP ROLE {quoted}")


def test_the_pg_monitor_grant_quotes_the_role_and_names_who_may_run_it(doctor_url: str) -> None:
    role = f"Mon Role {doctor_url.rsplit('_', 1)[-1]}"
    execute(doctor_url, f'CREATE ROLE "{role}" LOGIN')
    try:
        with pytest.raises(DoctorError) as raised:
            diagnose(as_role(doctor_url, role))
    finally:
        execute(doctor_url, f'DROP ROLE "{role}"')
    assert f'GRANT pg_monitor TO "{role}";' in str(raised.value)
    assert "database owner" not in str(raised.value)
    assert "ADMIN OPTION on pg_monitor" in str(raised.value)
