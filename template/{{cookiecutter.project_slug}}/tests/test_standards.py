"""The models follow pgkeel's standards: ``pgkeel check`` reports nothing."""

from __future__ import annotations

import pytest
from pgkeel.cli import main


def test_pgkeel_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check"])
    output = capsys.readouterr()
    assert status == 0, output.out + output.err
