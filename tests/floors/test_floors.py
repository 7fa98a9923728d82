"""The declared version floors are true, and pgkeel's entry points work on every allowed Alembic.

`make lowest` runs this module, with a few others (models, session hooks, a migration cycle
through the plugin), in an environment holding the lowest allowed version of every direct
dependency (``uv pip install --resolution lowest-direct``), with PGKEEL_EXPECT_FLOORS=1: there
the installed versions must be exactly the floors. The main suite runs it on the newest ones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TEMPLATE_PYPROJECT = ROOT / "template" / "{{cookiecutter.project_slug}}" / "pyproject.toml"
EXPECT_FLOORS = "PGKEEL_EXPECT_FLOORS"


def floors(requirements: list[str]) -> dict[str, str]:
    """The ``>=`` floor of each requirement that has one, by normalised distribution name."""
    found = {}
    for text in requirements:
        requirement = Requirement(text)
        for specifier in requirement.specifier:
            if specifier.operator == ">=":
                found[re.sub(r"[-_.]+", "-", requirement.name).lower()] = specifier.version
    return found


def version_tuple(version: str) -> tuple[int, ...]:
    """``2.1`` -> ``(2, 1, 0)``: release numbers, padded, for comparing floors."""
    numbers = [int(part) for part in re.findall(r"\d+", version)[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def run_python(*code: str) -> subprocess.CompletedProcess[str]:
    """Run Python code in this environment with every warning an error."""
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", "\n".join(code)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_importing_alembic_autogenerate_sets_up_pgkeels_plugin() -> None:
    result = run_python(
        "import alembic.autogenerate",
        "from alembic.runtime.plugins import _all_plugins",
        "assert 'pgkeel.autogenerate' in _all_plugins, sorted(_all_plugins)",
    )
    assert result.returncode == 0, result.stderr


def test_alembic_help_runs_beside_pgkeel() -> None:
    alembic = Path(sys.executable).parent / "alembic"
    result = subprocess.run(
        [str(alembic), "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert result.returncode == 0, result.stderr
    assert "upgrade" in result.stdout


def test_the_runtime_library_imports_without_alembic() -> None:
    result = run_python("import sys, pgkeel", "assert 'alembic' not in sys.modules")
    assert result.returncode == 0, result.stderr


def test_the_template_asks_for_no_less_than_pgkeel_needs() -> None:
    """A service installs pgkeel's floors or newer: its own floors are not below pgkeel's."""
    pgkeel = floors(
        PYPROJECT["project"]["dependencies"]
        + PYPROJECT["project"]["optional-dependencies"]["alembic"]
    )
    template = floors(
        re.findall(r'^    "([A-Za-z][^"]*>=[^"]*)",$', TEMPLATE_PYPROJECT.read_text(), re.M)
    )
    shared = sorted(set(pgkeel) & set(template))
    assert {"sqlalchemy", "alembic", "psycopg"} <= set(shared)
    for name in shared:
        assert version_tuple(template[name]) >= version_tuple(pgkeel[name]), name


@pytest.mark.skipif(os.environ.get(EXPECT_FLOORS) != "1", reason="only in `make lowest`")
def test_the_installed_versions_are_the_floors() -> None:
    declared = floors(
        PYPROJECT["project"]["dependencies"]
        + PYPROJECT["project"]["optional-dependencies"]["alembic"]
    )
    for name, floor in declared.items():
        installed = metadata.version(name)
        assert version_tuple(installed)[:2] == version_tuple(floor)[:2], (name, installed, floor)
