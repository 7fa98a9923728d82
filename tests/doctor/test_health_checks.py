"""Each health check on tables, shown by creating its problem for real and finding it."""

from __future__ import annotations

import pytest

from tests.doctor.conftest import execute, found, server_setting
from tests.doctor.test_schema_checks import only


def test_a_low_cache_hit_ratio_is_found_with_the_setting_to_change(doctor_url: str) -> None:
    if server_setting(doctor_url, "shared_buffers") != "16MB":
        pytest.skip("needs the doctor's server (shared_buffers = 16MB), not a given server")
    execute(
        doctor_url,
        "CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad "
        "FROM generate_series(1, 40000) g",
        "SELECT count(*) FROM big",
        "SELECT count(*) FROM big",
    )
    [finding] = only(found(doctor_url), "cache-hit-ratio")
    assert finding.object == "tables"
    assert finding.evidence["hit_ratio"] < 0.95
    assert finding.fix.startswith("setting shared_buffers")


def test_dead_rows_are_found_with_vacuum_and_autovacuum_turned_back_on(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE d (id int PRIMARY KEY) WITH (autovacuum_enabled = false)",
        "INSERT INTO d SELECT generate_series(1, 5000)",
        "DELETE FROM d WHERE id <= 3000",
    )
    [finding] = only(found(doctor_url), "dead-tuples")
    assert finding.evidence == {"dead_rows": 3000, "live_rows": 2000, "dead_ratio": 0.6}
    assert finding.fix == (
        "VACUUM (ANALYZE) public.d; ALTER TABLE public.d RESET (autovacuum_enabled);"
        "  -- autovacuum is off"
    )
    execute(doctor_url, "VACUUM (ANALYZE) d")
    assert only(found(doctor_url), "dead-tuples") == []


def test_table_and_index_bloat_left_by_a_mass_delete_are_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE b (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false)",
        "INSERT INTO b SELECT g, g FROM generate_series(1, 200000) g",
        "DELETE FROM b WHERE id % 10 <> 0",
        "VACUUM (ANALYZE) b",
    )
    report = found(doctor_url, bloat_min_bytes=1024 * 1024)
    [table] = only(report, "table-bloat")
    [index] = only(report, "index-bloat")
    assert (table.object, index.object) == ("public.b", "public.b_pkey")
    assert table.evidence["bloat_ratio"] > 0.8
    assert index.evidence["bloat_ratio"] > 0.8
    assert index.fix == "REINDEX INDEX CONCURRENTLY public.b_pkey;"
    assert only(found(doctor_url), "table-bloat") == []  # under the default 10 MiB
    execute(doctor_url, "VACUUM (FULL, ANALYZE) b")
    assert only(found(doctor_url, bloat_min_bytes=0), "table-bloat") == []


def test_tables_never_vacuumed_or_analyzed_are_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE m (id int PRIMARY KEY) WITH (autovacuum_enabled = false)",
        "INSERT INTO m SELECT generate_series(1, 2000)",
    )
    report = found(doctor_url)
    [vacuum] = only(report, "vacuum-stale")
    [analyze] = only(report, "analyze-stale")
    assert vacuum.evidence["days_since"] is None
    assert "never been vacuumed" in vacuum.message
    assert analyze.fix.startswith("ANALYZE public.m;")
    execute(doctor_url, "VACUUM (ANALYZE) m")
    report = found(doctor_url)
    assert only(report, "vacuum-stale") == only(report, "analyze-stale") == []


def test_transaction_id_age_past_the_share_of_freeze_max_age_is_found(doctor_url: str) -> None:
    execute(doctor_url, "CREATE TABLE x (id int PRIMARY KEY)")
    execute(doctor_url, *["SELECT txid_current()"] * 30)
    freeze_max_age = int(server_setting(doctor_url, "autovacuum_freeze_max_age"))
    report = found(doctor_url, xid_age_ratio=25 / freeze_max_age)
    finding = next(f for f in only(report, "xid-age") if f.object == "public.x")
    assert finding.evidence["xid_age"] >= 30
    assert finding.evidence["autovacuum_freeze_max_age"] == freeze_max_age
    assert finding.fix.startswith("VACUUM (FREEZE, VERBOSE) public.x;")
    execute(doctor_url, "VACUUM (FREEZE) x")
    report = found(doctor_url, xid_age_ratio=25 / freeze_max_age)
    assert "public.x" not in [f.object for f in only(report, "xid-age")]


def test_a_large_table_read_by_sequential_scans_is_found(doctor_url: str) -> None:
    execute(
        doctor_url,
        "CREATE TABLE s (id int PRIMARY KEY, v int)",
        "INSERT INTO s SELECT g, g % 100 FROM generate_series(1, 12000) g",
        "ANALYZE s",
        *["SELECT count(*) FROM s WHERE v = 5"] * 3,
    )
    [finding] = only(found(doctor_url), "seq-scan-heavy")
    assert finding.evidence["seq_scans"] >= 3
    assert finding.evidence["index_scans"] == 0
