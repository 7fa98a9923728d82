"""An example project for the Alembic tests: models, env.py, a versions directory, a database.

Each example lives in ``tests/alembic/examples/<name>/`` as one or more model modules
(``models.py``, ``models_v2.py``...), each with its own isolated declarative base. A project
copies the shared ``env.py`` and ``script.py.mako`` into a temporary directory, writes an
``alembic.ini`` naming the model module to use, and runs Alembic's commands in-process.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text

from alembic_extensions import check

T = TypeVar("T")
EXAMPLES = Path(__file__).parent / "examples"
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

CATALOG_LEFTOVERS = {
    "tables": """
        SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND relname <> 'alembic_version'
    """,
    "indexes": """
        SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'i' AND relname <> 'alembic_version_pkc'
    """,
    "functions": """
        SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
    """,
    "triggers": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
    "policies": "SELECT polname FROM pg_policy",
    "types": """
        SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')
    """,
}

_LOADED: dict[str, ModuleType] = {}


def load_models(example: str, module: str = "models") -> str:
    """Import an example's model module once per process under a unique name; return the name."""
    name = f"pgkeel_example_{example}_{module}"
    if name not in _LOADED:
        path = EXAMPLES / example / f"{module}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
        _LOADED[name] = loaded
    return name


@dataclass
class Project:
    """A migration project for one example, on one database."""

    directory: Path
    url: str
    example: str
    module: str = "models"
    """The model module the project points at (``models``, ``models_v2``...)."""

    @classmethod
    def create(cls, directory: Path, url: str, example: str) -> Project:
        """Lay the project out in ``directory``."""
        migrations = directory / "migrations"
        (migrations / "versions").mkdir(parents=True)
        shutil.copy(EXAMPLES / "env.py", migrations / "env.py")
        shutil.copy(EXAMPLES / "script.py.mako", migrations / "script.py.mako")
        project = cls(directory, url, example)
        project.use("models")
        return project

    def use(self, module: str) -> None:
        """Point the project at another version of the example's models."""
        models = load_models(self.example, module)
        self.module = module
        (self.directory / "alembic.ini").write_text(
            "[alembic]\n"
            "script_location = %(here)s/migrations\n"
            "revision_environment = true\n"
            f"example_models = {models}\n"
            f"sqlalchemy.url = {self.url}\n"
        )

    def config(self, *x: str, **attributes: Any) -> Config:
        """A fresh Alembic config for this project, output captured; ``x``: ``-x`` arguments."""
        return Config(
            self.directory / "alembic.ini",
            stdout=io.StringIO(),
            output_buffer=io.StringIO(),
            cmd_opts=argparse.Namespace(x=list(x)),
            attributes=attributes,
        )

    def revisions(self, message: str | None = None, *x: str) -> list[Path]:
        """``alembic revision --autogenerate -m message [-x ...]``; the paths written."""
        scripts = command.revision(self.config(*x), message=message, autogenerate=True)
        written = scripts if isinstance(scripts, list) else [scripts]
        return [Path(script.path) for script in written if script is not None]

    def revision(self, message: str | None = None, *x: str) -> Path:
        """Like ``revisions``, for an autogenerate run that writes one file."""
        (path,) = self.revisions(message, *x)
        return path

    def written_revision(self, message: str | None = None) -> Path:
        """``alembic revision -m message`` (no autogenerate): a migration to write by hand."""
        script = command.revision(self.config(), message=message)
        assert script is not None
        assert not isinstance(script, list)
        assert script.path is not None
        return Path(script.path)

    def upgrade(self, target: str = "head") -> None:
        """``alembic upgrade target``."""
        command.upgrade(self.config(), target)

    def downgrade(self, target: str = "base") -> None:
        """``alembic downgrade target``."""
        command.downgrade(self.config(), target)

    def check(self) -> None:
        """``alembic check``: raises ``AutogenerateDiffsDetected`` on drift."""
        command.check(self.config())

    def offline_sql(self, target: str = "head") -> str:
        """``alembic upgrade target --sql``."""
        config = self.config()
        command.upgrade(config, target, sql=True)
        assert isinstance(config.output_buffer, io.StringIO)
        return config.output_buffer.getvalue()

    def versions(self) -> list[Path]:
        """The migration files, in name order."""
        return sorted((self.directory / "migrations" / "versions").glob("*.py"))

    def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in a transaction on the project's database, then commit."""
        engine = create_engine(self.url)
        try:
            with engine.begin() as connection:
                return work(connection)
        finally:
            engine.dispose()

    def query(self, sql: str) -> list[Any]:
        """The first column of each row of ``sql`` on the project's database."""
        return sorted(row[0] for row in self.run(lambda c: c.execute(text(sql)).all()))

    def execute(self, sql: str) -> None:
        """Run ``sql`` on the project's database and commit."""
        self.run(lambda connection: connection.exec_driver_sql(sql))

    def leftovers(self) -> dict[str, list[str]]:
        """Tables, indexes, functions, triggers, policies and types still in the database."""
        found = {kind: self.query(sql) for kind, sql in CATALOG_LEFTOVERS.items()}
        return {kind: names for kind, names in found.items() if names}


def ruff_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    """``ruff check`` with ruff's defaults plus import sorting, pyupgrade and bugbear."""
    return subprocess.run(
        [
            str(VENV_BIN / "ruff"),
            "check",
            "--isolated",
            "--select",
            "E4,E7,E9,F,I,UP,B",
            "--target-version",
            "py311",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def squawk(project: Project) -> tuple[int, str]:
    """squawk on each migration's SQL, with the exclusions ``pgkeel check`` uses."""
    return check.squawk(check.migration_sql(project.config()), check.SQUAWK_EXCLUDED)
