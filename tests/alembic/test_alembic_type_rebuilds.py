"""A type change that rewrites no row is refused when it rebuilds indexes or cannot run.

``varchar(50)`` to ``varchar(100)`` keeps the table's file, but PostgreSQL rebuilds inside the
ALTER TABLE, under its ACCESS EXCLUSIVE lock, every index on the column with a predicate or an
expression (the partial unique rules of a soft-deleted table), and refuses the change on a
column a stored generated column reads. Both are asked of PostgreSQL on an empty copy.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project

from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
FILES = """
    SELECT relname || ' ' || relfilenode FROM pg_class
    WHERE relname IN ('members', 'uq_members_email', 'uq_members_lower_code', 'tags',
    'uq_tags_name')
"""


def _created(make_project: MakeProject, version: str) -> Project:
    project = make_project("type_rebuilds")
    project.revision("create tables")
    project.upgrade()
    project.execute(
        "INSERT INTO members (email, code) SELECT 'm' || n, 'c' || n FROM generate_series(1, 50) n;"
        "INSERT INTO items (code) VALUES ('A');"
        "INSERT INTO tags (name) SELECT 't' || n FROM generate_series(1, 50) n"
    )
    project.use(version)
    return project


def test_a_change_that_rebuilds_indexes_is_refused_by_column(make_project: MakeProject) -> None:
    project = _created(make_project, "models_v2")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("longer")
    found = {v.where: v for v in refused.value.violations}
    assert sorted(found) == ["members.code", "members.email"]  # the tags' index is reused
    assert {v.rule for v in found.values()} == {"table-rewrite"}
    assert "PostgreSQL rebuilds uq_members_email" in found["members.email"].problem
    assert "ACCESS EXCLUSIVE" in found["members.email"].problem
    assert "CONCURRENTLY" in found["members.email"].fix
    assert "PostgreSQL rebuilds uq_members_lower_code" in found["members.code"].problem
    assert [path.name for path in project.versions()] == ["0001_create_tables.py"]


def test_acknowledged_the_rebuilds_run_and_no_row_is_rewritten(make_project: MakeProject) -> None:
    project = _created(make_project, "models_v2")
    before = dict(row.split() for row in project.query(FILES))
    (path,) = project.revisions("longer", "acknowledge=members.email,members.code")
    written = path.read_text()
    assert "rebuilds uq_members_email: acknowledged" in written
    assert "rebuilds uq_members_lower_code: acknowledged" in written
    assert "no table rewrite (checked by pgkeel)" in written  # the tags' name
    project.upgrade()
    project.check()
    after = dict(row.split() for row in project.query(FILES))
    assert after["members"] == before["members"]
    assert after["uq_members_email"] != before["uq_members_email"]
    assert after["uq_members_lower_code"] != before["uq_members_lower_code"]
    assert after["tags"] == before["tags"]
    assert after["uq_tags_name"] == before["uq_tags_name"]


def test_a_change_postgresql_refuses_is_refused_with_its_words(make_project: MakeProject) -> None:
    project = _created(make_project, "models_items")
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("longer")
    (violation,) = refused.value.violations
    assert (violation.rule, violation.where) == ("table-rewrite", "items.code")
    assert "fails when the migration runs" in violation.problem
    assert "used by a generated column" in violation.problem
    assert "generated column" in violation.fix
    assert [path.name for path in project.versions()] == ["0001_create_tables.py"]
