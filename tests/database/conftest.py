"""Fixtures for the database-provisioning tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (``tmp_path`` sits in a 0700 directory when root)."""
    directory = Path(tempfile.mkdtemp(prefix="pgkeel-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)
