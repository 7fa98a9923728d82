"""Sessions, locks, connections and replication, each shown for real and found."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy.engine import make_url

from pgkeel.database import conninfo
from tests.doctor.conftest import execute, found
from tests.doctor.test_schema_checks import only

if TYPE_CHECKING:
    from collections.abc import Iterator

WAIT_S = 30


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(conninfo(make_url(url)), autocommit=autocommit)


def wait_for(url: str, condition: str) -> None:
    """Poll pg_stat_activity until ``condition`` holds for some session (or fail)."""
    deadline = time.monotonic() + WAIT_S
    with connect(url) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {condition}")
            if row.fetchone() != (0,):
                return
            time.sleep(0.05)
    raise AssertionError(f"no session with {condition} within {WAIT_S} s")


@contextmanager
def in_background(url: str, statement: str) -> Iterator[int]:
    """Run ``statement`` on its own connection in a thread; yield its pid; cancel it after."""
    connection = connect(url)
    pid = connection.info.backend_pid
    worker = threading.Thread(target=_swallow_cancel, args=(connection, statement))
    worker.start()
    try:
        yield pid
    finally:
        with connect(url) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", [pid])
        worker.join(WAIT_S)
        connection.close()


def _swallow_cancel(connection: psycopg.Connection[tuple[object, ...]], statement: str) -> None:
    with suppress(psycopg.errors.QueryCanceled):
        connection.execute(statement)  # type: ignore[arg-type]


def test_a_long_running_query_is_found_with_its_pid(doctor_url: str) -> None:
    with in_background(doctor_url, "SELECT pg_sleep(600)") as pid:
        wait_for(doctor_url, f"pid = {pid} AND state = 'active'")
        [finding] = only(found(doctor_url, long_query_s=0), "long-running-query")
        assert finding.object == f"pid {pid}"
        assert finding.evidence["query"] == "SELECT pg_sleep(600)"
        assert finding.fix.startswith(f"SELECT pg_cancel_backend({pid});")
        assert only(found(doctor_url), "long-running-query") == []  # under 60 s


def test_the_fix_of_a_long_query_quotes_its_role(doctor_url: str) -> None:
    """A role named with a space and capitals: the ALTER ROLE of the fix runs as written."""
    role = 'Night "Batch" Jobs'
    quoted = '"Night ""Batch"" Jobs"'
    execute(doctor_url, f"CREATE ROLE {quoted} LOGIN")
    try:
        url = make_url(doctor_url).set(username=role, password=None)
        as_role = url.render_as_string(hide_password=False)
        with in_background(as_role, "SELECT pg_sleep(600)") as pid:
            wait_for(doctor_url, f"pid = {pid} AND state = 'active'")
            [finding] = only(found(doctor_url, long_query_s=0), "long-running-query")
        assert f"ALTER ROLE {quoted} SET statement_timeout = '30s'" in finding.fix
        alter = finding.fix[finding.fix.index("ALTER ROLE") :].removesuffix(")")
        execute(doctor_url, alter)  # the fix is valid SQL for that role
    finally:
        execute(doctor_url, f"DROP ROLE {quoted}")


def test_a_transaction_left_idle_is_found_as_long_and_idle_in_transaction(doctor_url: str) -> None:
    with connect(doctor_url, autocommit=False) as idle:
        idle.execute("SELECT 1")
        pid = idle.info.backend_pid
        wait_for(doctor_url, f"pid = {pid} AND state = 'idle in transaction'")
        report = found(doctor_url, long_transaction_s=0, idle_in_transaction_s=0)
        [long] = only(report, "long-transaction")
        [waiting] = only(report, "idle-in-transaction")
        assert long.object == waiting.object == f"pid {pid}"
        assert "idle_in_transaction_session_timeout" in waiting.fix


def test_a_session_blocked_by_another_is_found_with_the_blocker(doctor_url: str) -> None:
    execute(doctor_url, "CREATE TABLE t (id int PRIMARY KEY, v int)", "INSERT INTO t VALUES (1, 0)")
    with connect(doctor_url, autocommit=False) as holder:
        holder.execute("UPDATE t SET v = 1 WHERE id = 1")
        with in_background(doctor_url, "UPDATE t SET v = 2 WHERE id = 1") as pid:
            wait_for(doctor_url, f"pid = {pid} AND wait_event_type = 'Lock'")
            [finding] = only(found(doctor_url, blocked_s=0), "blocked-query")
            assert finding.object == f"pid {pid}"
            assert finding.evidence["blocked_by"] == str(holder.info.backend_pid)
            assert finding.fix.startswith(
                f"SELECT pg_terminate_backend({holder.info.backend_pid});"
            )
        holder.rollback()


def test_connections_near_max_connections_are_found(doctor_url: str) -> None:
    with connect(doctor_url), connect(doctor_url):
        [finding] = only(found(doctor_url, connections_ratio=0.001), "connections")
    assert finding.evidence["total"] >= 2
    assert "PgBouncer" in finding.fix
    assert only(found(doctor_url), "connections") == []


def test_inactive_physical_and_logical_slots_are_found_and_lag_is_not_applicable(
    doctor_url: str,
) -> None:
    execute(
        doctor_url,
        "SELECT pg_create_physical_replication_slot('doctor_physical', true)",
        "SELECT pg_create_logical_replication_slot('doctor_logical', 'pgoutput')",
    )
    try:
        report = found(doctor_url)
    finally:
        execute(
            doctor_url,
            "SELECT pg_drop_replication_slot('doctor_physical')",
            "SELECT pg_drop_replication_slot('doctor_logical')",
        )
    findings = {f.object: f for f in only(report, "inactive-replication-slot")}
    assert set(findings) == {"slot doctor_physical", "slot doctor_logical"}
    assert findings["slot doctor_logical"].evidence["slot_type"] == "logical"
    assert isinstance(findings["slot doctor_physical"].evidence["retained_wal_bytes"], int)
    assert findings["slot doctor_physical"].fix.startswith(
        "SELECT pg_drop_replication_slot('doctor_physical');"
    )
    notes = {note.check: note for note in report.notes}
    assert notes["replica-lag"].status == "not-applicable"
    assert notes["replica-lag"].reason == "the server has no replicas."
    assert "inactive-replication-slot" not in notes
