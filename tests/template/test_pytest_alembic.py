"""A rendered service passes pytest-alembic's built-in migration tests.

pytest-alembic (the usual migration test suite) passes an ``Engine`` in
``config.attributes["connection"]``, which ``run_migrations`` accepts. pytest-alembic 0.13 does
not load under pytest 9, so the service is installed with pytest 8 in an environment of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.template.conftest import render_into
from tests.template.test_service_e2e import Service

pytestmark = pytest.mark.slow

PYTEST_ALEMBIC_TESTS = '''\
"""pytest-alembic's built-in tests, each on an engine of its own empty database."""

from collections.abc import Iterator

import pytest
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_engine(empty_database_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_database_url, poolclass=NullPool)
    yield engine
    engine.dispose()
'''


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path, pgkeel_server_url: URL
) -> Iterator[Service]:
    """A multi-tenant service with pgkeel from this checkout, pytest 8 and pytest-alembic."""
    workdir = tmp_path_factory.mktemp("service-pytest-alembic")
    path = render_into(workdir, cookiecutter_config, multi_tenant="yes")
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    install = subprocess.run(
        [
            *pip,
            "install",
            "-q",
            "--find-links",
            str(path / "wheels"),  # pgkeel's wheel, built from this checkout by the hook
            "-e",
            f"{path}[dev]",
            "pytest>=8.2,<9",
            "pytest-alembic==0.13.*",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    yield Service(path, venv, "yes", pgkeel_server_url)
    shutil.rmtree(workdir, ignore_errors=True)


def test_pytest_alembics_built_in_tests_pass(service: Service) -> None:
    (service.path / "tests" / "test_pytest_alembic.py").write_text(PYTEST_ALEMBIC_TESTS)
    output = service.ok(
        "pytest", "-q", "-p", "no:cacheprovider", "-rA", "tests/test_pytest_alembic.py"
    )
    for name in (
        "test_single_head_revision",
        "test_upgrade",
        "test_model_definitions_match_ddl",
        "test_up_down_consistency",
    ):
        assert f"PASSED tests/test_pytest_alembic.py::{name}" in output, output
    assert "4 passed" in output, output
