"""Every Python block in docs/ and README.md runs, top to bottom, one process per page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from pgkeel.testing.databases import create_database, drop_database
from tests.docs.run_page import SKIP_STATUS, python_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
RUNNER = Path(__file__).with_name("run_page.py")
PAGE_TIMEOUT_S = 300


def test_docs_have_runnable_examples() -> None:
    assert sum(len(python_blocks(page)) for page in PAGES) > 0


def run_page(page: Path, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The page's blocks in a fresh interpreter, warnings as errors, on ``database_url``."""
    return subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", str(RUNNER), str(page)],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_runs(
    page: Path, pgkeel_server_url: URL, pgkeel_database_prefix: str, tmp_path: Path
) -> None:
    if not python_blocks(page):
        pytest.skip(f"{page.name} has no Python block")
    name = f"{pgkeel_database_prefix}_doc_{page.stem.replace('-', '_')}"
    url = create_database(pgkeel_server_url, name).render_as_string(hide_password=False)
    try:
        result = run_page(page, url, tmp_path)
    finally:
        drop_database(pgkeel_server_url, name)
    if result.returncode == SKIP_STATUS:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, f"{page.name} failed:\n{result.stderr}"
    assert "Exception ignored" not in result.stderr, f"{page.name} leaked:\n{result.stderr}"
