"""TenantMixin on a table with rows: refused with the recipe, which works; ``op.backfill``."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic_project import Project, ruff_check, squawk
from sqlalchemy import create_engine, exc
from sqlalchemy.engine import make_url

from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
ORDER_ROWS = 3000
TESTS = Path(__file__).parent
WAIT_S = 120
BACKFILL = '''"""backfill orders.tenant_id"""

from alembic import op

revision = "{revision:04d}"
down_revision = "{down:04d}"


def upgrade() -> None:
    op.backfill(
        "orders",
        {{"tenant_id": "(SELECT t.id FROM tenants t{slow} WHERE t.name = orders.shop)"}},
        where="tenant_id IS NULL",
        batch_size={batch_size},
    )
    op.create_check_constraint(
        op.f("chk_orders_tenant_id_not_null"),
        "orders",
        "tenant_id IS NOT NULL",
        postgresql_not_valid=True,
    )


def downgrade() -> None:
    op.drop_constraint(op.f("chk_orders_tenant_id_not_null"), "orders")
'''
VALIDATE = '''"""orders.tenant_id is NOT NULL"""

from alembic import op

revision = "{revision:04d}"
down_revision = "{down:04d}"


def upgrade() -> None:
    op.validate_constraint("chk_orders_tenant_id_not_null", "orders")
    op.alter_column("orders", "tenant_id", nullable=False)
    op.drop_constraint("chk_orders_tenant_id_not_null", "orders")


def downgrade() -> None:
    op.create_check_constraint(
        op.f("chk_orders_tenant_id_not_null"),
        "orders",
        "tenant_id IS NOT NULL",
        postgresql_not_valid=True,
    )
    op.alter_column("orders", "tenant_id", nullable=True)
'''
PROGRESS = re.compile(r"backfill orders: [1-9][\d,]* of 3,000 rows \(\d+%\)")
"""A progress line once a batch is done."""
SLOW = ", LATERAL (SELECT pg_sleep(0.002) WHERE orders.shop IS NOT NULL) AS slow"
"""2 ms a row (correlated, so run for each row): batches slow enough to watch and interrupt."""
RUNNER = """
import logging, sys
sys.path.insert(0, {tests!r})
from alembic_project import load_models
load_models("tenant_add", "models_v2")
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
from alembic.config import main
main(["-c", "alembic.ini", "upgrade", "head"])
"""


def _relfilenode(project: Project) -> list[int]:
    return project.query("SELECT relfilenode FROM pg_class WHERE relname = 'orders'")


def _with_rows(make_project: MakeProject) -> Project:
    project = make_project("tenant_add")
    project.revision("create orders")
    project.upgrade()
    project.execute(
        "INSERT INTO tenants (name) VALUES ('north'), ('south');"
        "INSERT INTO orders (number, shop) SELECT 'n' || g,"
        " (ARRAY['north', 'south'])[1 + mod(g, 2)] FROM generate_series(1, 3000) g"
    )
    return project


def _expanded(make_project: MakeProject, *, slow: bool = False, batch_size: int = 500) -> Project:
    """Orders with rows and a nullable tenant_id; the backfill and NOT NULL revisions written."""
    project = _with_rows(make_project)
    project.use("models_v2")
    project.revisions("orders get tenants")
    project.upgrade()
    number = len(project.versions()) + 1
    backfill = BACKFILL.format(
        slow=SLOW if slow else "", batch_size=batch_size, revision=number, down=number - 1
    )
    versions = project.directory / "migrations" / "versions"
    (versions / f"{number:04d}_backfill.py").write_text(backfill)
    not_null = VALIDATE.format(revision=number + 1, down=number)
    (versions / f"{number + 1:04d}_not_null.py").write_text(not_null)
    return project


def test_tenant_mixin_on_a_table_with_rows_is_refused_with_the_recipe(
    make_project: MakeProject,
) -> None:
    project = _with_rows(make_project)
    project.use("models_v3")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revisions("orders get tenants")
    message = str(raised.value)
    assert "[tenant-backfill] orders.tenant_id: TenantMixin added to a table that" in message
    assert "NotNullViolation" in message
    assert (
        'alembic -x "backfill=orders.tenant_id=<SQL giving each row its tenant>" revision'
        " --autogenerate -m 'orders are tenant rows'"
    ) in message
    assert "op.backfill (batches by primary key" in message
    assert "CHECK (tenant_id IS NOT NULL) NOT VALID), op.validate_constraint" in message
    assert "op.set_not_null (no scan: the valid check proves it" in message
    assert "row-level security and the policy last" in message
    assert len(project.versions()) == 1


def test_expand_backfill_contract_on_a_table_with_rows(make_project: MakeProject) -> None:
    project = _expanded(make_project)
    before = _relfilenode(project)
    offline = project.offline_sql("0003:0004")
    assert "DO $$" in offline or "DO '" in offline
    assert "COMMIT;" in offline.split("DO ", 1)[0][-200:]  # the batches commit: not in BEGIN
    project.upgrade()
    assert project.query("SELECT count(*) FROM orders WHERE tenant_id IS NULL") == [0]
    status, report = squawk(project)  # the check goes once NOT NULL holds: a drop on purpose
    findings = [(line.split(":")[0], line.split(" ")[2]) for line in report.splitlines()]
    assert (status, findings) == (1, [("0005_not_null.sql", "ban-drop-constraint")])
    project.use("models_v3")
    paths = project.revisions("orders are tenant rows")
    assert ruff_check(*paths).returncode == 0
    status, report = squawk(project)
    assert report.splitlines() == [line for line in report.splitlines() if "0005_" in line]
    project.upgrade()
    project.check()
    assert _relfilenode(project) == before  # nothing rewrote the table
    assert project.query("SELECT relname FROM pg_class WHERE relforcerowsecurity") == ["orders"]
    by_tenant = project.query(
        "SELECT count(*) FROM orders o JOIN tenants t ON t.id = o.tenant_id AND t.name = o.shop"
    )
    assert by_tenant == [ORDER_ROWS]
    project.execute(  # numbers are unique per tenant now: the other tenant may reuse one
        "INSERT INTO orders (tenant_id, number, shop) SELECT id, 'n1', name FROM tenants"
        " WHERE name = 'north'"
    )
    with pytest.raises(exc.IntegrityError):
        project.execute(
            "INSERT INTO orders (tenant_id, number, shop) SELECT id, 'n1', name FROM tenants"
            " WHERE name = 'north'"
        )


def test_a_backfill_logs_its_progress(
    make_project: MakeProject, caplog: pytest.LogCaptureFixture
) -> None:
    project = _expanded(make_project)
    with caplog.at_level(logging.INFO, logger="alembic_extensions.backfill"):
        project.upgrade()
    lines = [r.getMessage() for r in caplog.records if r.name == "alembic_extensions.backfill"]
    assert lines[0] == "backfill orders: 3,000 rows to update"
    assert lines[1].startswith("backfill orders: 500 of 3,000 rows (16%), ")
    assert " rows/s, " in lines[1]
    assert lines[1].endswith(" left")
    assert lines[-1].startswith("backfill orders: 3,000 rows updated in ")
    assert len(lines) == 2 + 5  # the start, each further tenth (6 batches of 500), the end


def _runner(project: Project) -> list[str]:
    script = project.directory / "run_upgrade.py"
    script.write_text(RUNNER.format(tests=str(TESTS)))
    return [sys.executable, str(script)]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT_S}s for {what}")
        time.sleep(0.1)


def test_a_killed_backfill_resumes_where_it_stopped(
    make_project: MakeProject, caplog: pytest.LogCaptureFixture
) -> None:
    project = _expanded(make_project, slow=True, batch_size=100)
    process = subprocess.Popen(  # this interpreter, a script the test wrote
        _runner(project), cwd=project.directory, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # the progress log: kill it a tenth of the way in
        seen.append(line)
        if "alembic_extensions.backfill: backfill orders: " in line and "rows/s" in line:
            break
    assert "rows/s" in seen[-1], "".join(seen)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    batches = (  # the batch the killed client had sent may still run: wait for it to end
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'WITH pgkeel_batch%'"
        " AND state = 'active' AND pid <> pg_backend_pid()"
    )
    _wait_for(lambda: project.query(batches) == [0], "the killed run's last batch")
    left = project.query("SELECT count(*) FROM orders WHERE tenant_id IS NULL")[0]
    assert 0 < left < ORDER_ROWS
    assert project.query("SELECT version_num FROM alembic_version") == ["0003"]
    with caplog.at_level(logging.INFO, logger="alembic_extensions.backfill"):
        project.upgrade()
    lines = [r.getMessage() for r in caplog.records if r.name == "alembic_extensions.backfill"]
    assert lines[0] == f"backfill orders: {left:,} rows to update"  # only what was left
    assert lines[-1].startswith(f"backfill orders: {left:,} rows updated in ")
    assert project.query("SELECT count(*) FROM orders WHERE tenant_id IS NULL") == [0]


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    """A tmux server of this test's own (its socket name), killed afterwards."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    command = ["tmux", "-L", f"pgkeel-backfill-{os.getpid()}"]
    yield command
    subprocess.run([*command, "kill-server"], capture_output=True, check=False)


def test_a_backfill_shows_its_progress_on_a_terminal(
    make_project: MakeProject, tmux: list[str]
) -> None:
    project = _expanded(make_project, slow=True, batch_size=100)
    runner = " ".join(_runner(project))
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "120", "-y", "20", "-c", str(project.directory),
         "-e", f"DATABASE_URL={project.url}", f"{runner} 2>&1 >/dev/null; sleep 600"],
        check=True,
    )  # fmt: skip

    def screen() -> str:
        capture = [*tmux, "capture-pane", "-p"]
        return subprocess.run(capture, capture_output=True, text=True, check=True).stdout

    def progress_shown() -> bool:
        return any(PROGRESS.match(line) for line in screen().splitlines())

    _wait_for(progress_shown, "a progress line")
    line = next(line for line in screen().splitlines() if PROGRESS.match(line))
    assert line.startswith("backfill orders: ")
    assert "rows/s, " in line
    assert line.endswith(" left")
    _wait_for(lambda: "rows updated in" in screen(), "the end of the backfill")
    lines = [line for line in screen().splitlines() if line.strip()]
    assert lines[-1].startswith("backfill orders: 3,000 rows updated in ")
    assert not any(" of 3,000 rows (" in line for line in lines)  # one line, redrawn in place


NOTE_BACKFILL = '''"""orders get a note"""

import sqlalchemy as sa
from alembic import op

revision = "{revision:04d}"
down_revision = "{down:04d}"


def upgrade() -> None:
    op.add_column("orders", sa.Column("note", sa.Text(), nullable=True))
    op.backfill("orders", {{"note": "'n-' || number"}}, where="note IS NULL", batch_size=700)


def downgrade() -> None:
    op.drop_column("orders", "note")
'''


def test_a_backfill_run_as_the_tables_owner_reaches_every_tenants_rows(
    make_project: MakeProject, pgkeel_database_prefix: str
) -> None:
    """Row-level security is forced on tenant tables: the owner, migrating, sees no row of its own.

    The backfill goes through the tenants one after the other (each batch in a transaction that
    sets its tenant), so it updates every row as the owner, as it does as a superuser.
    """
    project = _expanded(make_project)
    project.upgrade()
    project.use("models_v3")
    project.revisions("orders are tenant rows")
    project.upgrade()
    assert project.query("SELECT relname FROM pg_class WHERE relforcerowsecurity") == ["orders"]
    role = f"{pgkeel_database_prefix}_backfill_owner"
    project.execute(
        f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS;'
        f'ALTER TABLE orders OWNER TO "{role}";'
        f'GRANT SELECT ON tenants TO "{role}";'
        f'GRANT ALL ON alembic_version TO "{role}";'
        f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'
    )
    number = len(project.versions()) + 1
    note = NOTE_BACKFILL.format(revision=number, down=number - 1)
    (project.directory / "migrations" / "versions" / f"{number:04d}_note.py").write_text(note)
    engine = create_engine(make_url(project.url).set(username=role, password=None))
    try:
        with engine.connect() as connection:
            seen = connection.exec_driver_sql("SELECT count(*) FROM orders").scalar()
            connection.commit()
            command.upgrade(project.config(connection=connection), "head")
            connection.commit()
    finally:
        engine.dispose()
        project.execute(
            f'REASSIGN OWNED BY "{role}" TO CURRENT_USER; DROP OWNED BY "{role}";DROP ROLE "{role}"'
        )
    assert seen == 0  # no tenant set: the owner sees none of the rows
    assert project.query("SELECT count(*) FROM orders WHERE note IS NULL") == [0]
    assert project.query("SELECT count(*) FROM orders WHERE note = 'n-' || number") == [ORDER_ROWS]
