"""Fixtures for the Alembic plugin tests: an example project on a database of its own."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic_project import Project
from sqlalchemy.engine import URL

from pgkeel.testing.databases import create_database, drop_database

_NUMBERS = itertools.count(1)


@pytest.fixture
def make_project(
    tmp_path: Path,
    pgkeel_server_url: URL,
    pgkeel_database_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], Project]]:
    """Build the project of an example, on a new empty database dropped after the test."""
    created: list[str] = []

    def make(example: str) -> Project:
        number = next(_NUMBERS)
        name = f"{pgkeel_database_prefix}_ae{number}"
        url = create_database(pgkeel_server_url, name).render_as_string(hide_password=False)
        created.append(name)
        monkeypatch.setenv("DATABASE_URL", url)  # the latest project's: make one at a time
        directory = tmp_path / f"{example}_{number}"
        directory.mkdir()
        return Project.create(directory, url, example)

    yield make
    for name in created:
        drop_database(pgkeel_server_url, name)
