"""Every Python block in docs/ and README.md runs, top to bottom, one namespace per page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from pgkeel.testing.databases import create_database, drop_database
from pgkeel.testing.pgbouncer import PgBouncerNotFoundError

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """Each ```python block of a page with the line number where its code starts."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_docs_have_runnable_examples() -> None:
    assert sum(len(python_blocks(page)) for page in PAGES) > 0


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_runs(
    page: Path,
    pgkeel_server_url: URL,
    pgkeel_database_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python block")
    name = f"{pgkeel_database_prefix}_doc_{page.stem.replace('-', '_')}"
    url = create_database(pgkeel_server_url, name)
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    try:
        for line, code in blocks:
            padded = "\n" * (line - 1) + code
            exec(compile(padded, str(page), "exec", dont_inherit=True), namespace)  # noqa: S102
    except PgBouncerNotFoundError as missing:
        pytest.skip(str(missing))
    finally:
        drop_database(pgkeel_server_url, name)
