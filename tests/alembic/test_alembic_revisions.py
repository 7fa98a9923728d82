"""Sequential revisions: 0001_<slug>.py with revision id "0001", and clear errors on forks."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from alembic_project import Project, ruff_check

from alembic_extensions.revisions import RevisionOrderError

MakeProject = Callable[[str], Project]


def _fork(project: Project, source: str, name: str, revision: str, down: str) -> None:
    """Write a revision file as a second branch would have (same parent as another one)."""
    text = re.sub(r"^revision: str = .*$", f"revision: str = {revision!r}", source, flags=re.M)
    text = re.sub(r"^down_revision: .*$", f"down_revision: str | None = {down!r}", text, flags=re.M)
    (project.directory / "migrations" / "versions" / name).write_text(text)


def test_revisions_are_numbered_in_sequence(make_project: MakeProject) -> None:
    project = make_project("fk_index")
    first = project.revision("Create books & authors!")
    project.upgrade()
    second = project.written_revision()
    assert [path.name for path in project.versions()] == [
        "0001_create_books_authors.py",
        "0002_update_schema.py",
    ]
    assert (first.name, second.name) == ("0001_create_books_authors.py", "0002_update_schema.py")
    source = second.read_text()
    assert "revision: str = '0002'" in source
    assert "down_revision: str | Sequence[str] | None = '0001'" in source
    assert "Revision ID: 0002\nRevises: 0001\n" in source
    lint = ruff_check(second)
    assert lint.returncode == 0, lint.stdout


def test_two_heads_stop_the_next_revision(make_project: MakeProject) -> None:
    project = make_project("fk_index")
    first = project.revision("create books")
    project.upgrade()
    source = project.written_revision("one branch").read_text()
    _fork(project, source, "0003_other_branch.py", "0003", "0001")
    with pytest.raises(RevisionOrderError) as raised:
        project.revision("after the merge")
    message = str(raised.value)
    assert "The migration history has 2 heads (0002, 0003)" in message
    assert "set its `down_revision`" in message
    assert "alembic merge heads" in message
    assert len(project.versions()) == 3
    assert first.exists()


def test_two_revisions_with_one_number_are_refused(make_project: MakeProject) -> None:
    project = make_project("fk_index")
    project.revision("create books")
    project.upgrade()
    source = project.written_revision("one branch").read_text()
    _fork(project, source, "0002_other_branch.py", "0002", "0001")
    with pytest.raises(RevisionOrderError) as raised:
        project.upgrade()
    message = str(raised.value)
    assert "Two revisions share the number 0002: 0002_one_branch.py and 0002_other_branch.py" in (
        message
    )
    assert "renumber the newer file" in message
