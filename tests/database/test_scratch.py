"""Where throwaway clusters and PgBouncers keep their files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from pgkeel.database import conninfo, process, provide_server
from pgkeel.database.process import RAM_DIR, TMPDIR_ENV, scratch_root


def test_pgkeel_tmpdir_is_honoured(open_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TMPDIR_ENV, str(open_dir))
    with provide_server({}) as server, psycopg.connect(conninfo(server.url)) as connection:
        row = connection.execute("show data_directory").fetchone()
        assert row is not None
        assert Path(str(row[0])).parent.parent == open_dir
    assert list(open_dir.iterdir()) == []


def test_memory_is_used_only_when_roomy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TMPDIR_ENV, raising=False)
    monkeypatch.setattr(process, "RAM_MIN_FREE_BYTES", 1 << 60)
    assert scratch_root() == Path(tempfile.gettempdir())
    monkeypatch.setattr(process, "RAM_MIN_FREE_BYTES", 0)
    if RAM_DIR.is_dir():
        assert scratch_root() == RAM_DIR
