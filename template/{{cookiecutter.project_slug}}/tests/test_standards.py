"""The models and the migrations follow pgkeel's standards: ``pgkeel check`` finds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from pgkeel.cli import main

SERVICE = Path(__file__).resolve().parents[1]


def test_pgkeel_check_passes(
    alembic_config: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command.upgrade(alembic_config, "head")  # the drift step compares a migrated database
    monkeypatch.chdir(SERVICE)
    status = main(["check"])
    output = capsys.readouterr()
    assert status == 0, output.out + output.err
