"""timestamp <-> timestamptz: what PostgreSQL does depends on the session's time zone.

In UTC the change is made in the catalog and each stored value is read as UTC; in any other
zone PostgreSQL rewrites the table under ACCESS EXCLUSIVE and shifts every value by the zone's
offset. The plugin checks the change in UTC and every migration runs in UTC, so the migration
it wrote does what it said, whatever zone the deploy's session (server, role, PGOPTIONS) has.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project

MakeProject = Callable[[str], Project]
NEW_YORK = "-c TimeZone=America/New_York"


def _relfilenode(project: Project) -> int:
    (node,) = project.query("SELECT relfilenode FROM pg_class WHERE relname = 'visits'")
    return int(node)


@pytest.mark.parametrize("deploy_zone", ["", NEW_YORK])
def test_the_change_to_timestamptz_keeps_the_table_and_its_values(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, deploy_zone: str
) -> None:
    project = make_project("time_zones")
    project.revision("create visits")
    project.upgrade()
    project.execute(
        "INSERT INTO visits (email, seen_at) "
        "SELECT 'v' || n, '2024-01-01 12:00' FROM generate_series(1, 50) n"
    )
    project.use("models_v2")
    monkeypatch.setenv("PGOPTIONS", NEW_YORK)  # the developer's session is not in UTC either
    path = project.revision("timestamptz")
    source = path.read_text()
    assert "no table rewrite (checked by pgkeel); the values are read as UTC" in source
    before = _relfilenode(project)
    monkeypatch.setenv("PGOPTIONS", deploy_zone)
    project.upgrade()
    assert _relfilenode(project) == before
    values = project.query(
        "SELECT DISTINCT to_char(seen_at AT TIME ZONE 'UTC', 'HH24:MI') FROM visits"
    )
    assert values == ["12:00"]
    project.downgrade("-1")
    assert project.query("SELECT DISTINCT seen_at::text FROM visits") == ["2024-01-01 12:00:00"]


def test_every_migration_and_offline_script_runs_in_utc(make_project: MakeProject) -> None:
    project = make_project("time_zones")
    project.revision("create visits")
    assert "SET TimeZone = 'UTC';\n\nBEGIN;" in project.offline_sql()
