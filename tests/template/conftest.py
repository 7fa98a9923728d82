"""Rendering pgkeel's service template into temporary directories, as cookiecutter users do."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template"
CONTEXT = json.loads((TEMPLATE / "cookiecutter.json").read_text())
POSTGRES_VERSIONS: list[str] = CONTEXT["_postgres_versions"]
MULTI_TENANT = ["yes", "no"]
COMBINATIONS = list(itertools.product(MULTI_TENANT, POSTGRES_VERSIONS))

Render = Callable[..., Path]


@pytest.fixture(scope="module", autouse=True)
def hook_scratch_dir() -> Iterator[Path]:
    """cookiecutter writes each rendered hook script to TMPDIR and never deletes it.

    Keep those scripts (and the scratch files of the commands the tests run) in a directory of
    this module's, removed afterwards, so rendering leaves nothing in the machine's ``/tmp``.
    """
    directory = Path(tempfile.mkdtemp(prefix="pgkeel-template-tests-"))
    directory.chmod(0o1777)  # like /tmp: the unprivileged PostgreSQL user may need it too
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(directory))
    patch.setattr(tempfile, "tempdir", str(directory))
    yield directory
    patch.undo()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cookiecutter config that keeps replay files and clones out of the home directory."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n"
    )
    return config


@pytest.fixture(scope="session")
def pgkeel_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pgkeel's wheel, built once from this checkout: what a release page offers."""
    out = tmp_path_factory.mktemp("pgkeel-wheel")
    subprocess.run(
        [sys.executable, "-m", "uv", "build", "--wheel", "-q", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("pgkeel-*.whl")
    return wheel


def render_into(
    output_dir: Path,
    config: Path,
    template: str = str(TEMPLATE),
    directory: str | None = None,
    **answers: str,
) -> Path:
    """Render ``template`` (this checkout's by default) with ``answers``; the service's path."""
    created = cookiecutter(
        template,
        directory=directory,
        no_input=True,
        extra_context=answers,
        output_dir=str(output_dir),
        config_file=str(config),
    )
    return Path(created)


@pytest.fixture
def render(tmp_path: Path, cookiecutter_config: Path, pgkeel_wheel: Path) -> Render:
    """``render(**answers)``: a freshly rendered service in this test's temporary directory.

    pgkeel comes from the wheel built once for the session, unless the answers say otherwise.
    """

    def render_service(**answers: str) -> Path:
        answers.setdefault("pgkeel_requirement", str(pgkeel_wheel))
        return render_into(tmp_path, cookiecutter_config, **answers)

    return render_service


def run_cookiecutter_cli(
    output_dir: Path, config: Path, *answers: str
) -> subprocess.CompletedProcess[str]:
    """``cookiecutter --no-input template KEY=VALUE...`` as a user types it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            "--output-dir",
            str(output_dir),
            str(TEMPLATE),
            *answers,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def python_files(service: Path) -> Iterator[Path]:
    """Every Python file of a rendered service."""
    return (path for path in service.rglob("*.py") if ".venv" not in path.parts)
