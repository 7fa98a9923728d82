"""A no-op ``alembic check`` sends the same few catalog queries for 3 tables and for 30.

The project is a real one (``run_migrations`` in env.py, migrated by its own revision): tenant
tables with soft delete, a timestamps trigger each, row-level security, a partial unique index
and a native enum. Every statement the check sends is attributed to the innermost of Alembic's
or pgkeel's code on the stack, so Alembic's own reflection is told apart from pgkeel's reads.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import alembic
import pytest
from alembic import command
from alembic.config import Config
from alembic_project import EXAMPLES, Project
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from alembic_extensions.catalog import QUERY_COUNT
from pgkeel.testing.databases import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
PGKEEL_CODE = (str(ROOT / "alembic_extensions"), str(ROOT / "src" / "pgkeel"))
ALEMBIC_CODE = str(Path(alembic.__file__).parent)

MODELS = """\
import enum

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgkeel import SoftDeleteMixin, TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.types import TYPE_ANNOTATION_MAP


class Base(PgkeelDeclarative, DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    name: Mapped[str]


class Status(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


for number in range({tables} - 1):
    type(
        f"Item{{number}}",
        (UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, SoftDeleteMixin, Base),
        {{
            "__tablename__": f"items_{{number}}",
            "__annotations__": {{"sku": Mapped[str], "status": Mapped[Status]}},
            "sku": mapped_column(unique=True),
        }},
    )
"""


def _sender(frame: FrameType | None) -> str:
    """Whose code sent the statement: the innermost frame of pgkeel's or of Alembic's."""
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(PGKEEL_CODE):
            return "pgkeel"
        if path.startswith(ALEMBIC_CODE):
            return "alembic"
        frame = frame.f_back
    return "other"


def _project(directory: Path, url: str, tables: int) -> Config:
    """An Alembic project on ``tables`` model tables (a models module of its own)."""
    migrations = directory / "migrations"
    (migrations / "versions").mkdir(parents=True)
    shutil.copy(EXAMPLES / "env.py", migrations / "env.py")
    shutil.copy(EXAMPLES / "script.py.mako", migrations / "script.py.mako")
    name = f"pgkeel_query_count_models_{tables}"
    path = directory / f"{name}.py"
    path.write_text(MODELS.format(tables=tables))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    (directory / "alembic.ini").write_text(
        "[alembic]\n"
        "script_location = %(here)s/migrations\n"
        f"example_models = {name}\n"
        f"sqlalchemy.url = {url}\n"
    )
    return Config(directory / "alembic.ini", stdout=sys.stderr)


@pytest.fixture
def databases(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[list[str]]:
    names = [f"{pgkeel_database_prefix}_qc{tables}" for tables in (3, 30)]
    yield [
        create_database(pgkeel_server_url, name).render_as_string(hide_password=False)
        for name in names
    ]
    for name in names:
        drop_database(pgkeel_server_url, name)


def _senders_of_check(config: Config) -> dict[str, int]:
    """How many statements ``alembic check`` sends, by sender; the check must find nothing."""
    sent: dict[str, int] = {}

    def count(*_args: object) -> None:
        sender = _sender(sys._getframe(1))  # the stack of the statement
        sent[sender] = sent.get(sender, 0) + 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        command.check(config)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return sent


def test_a_no_op_check_reads_the_catalog_in_the_same_queries_for_3_and_30_tables(
    tmp_path: Path, databases: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {}
    for tables, url in zip((3, 30), databases, strict=True):
        monkeypatch.setenv("DATABASE_URL", url)
        config = _project(tmp_path / f"tables_{tables}", url, tables)
        command.revision(config, message="create", autogenerate=True)
        command.upgrade(config, "head")
        _senders_of_check(config)  # the first run in this process fills the caches
        counts[tables] = _senders_of_check(config)
    assert counts[3]["alembic"] > 0
    assert counts[3].get("pgkeel") == counts[30].get("pgkeel") == QUERY_COUNT


NOT_FOR_A_COMPARISON = (
    "alembic_extensions.safety",
    "alembic_extensions.loss",
    "alembic_extensions.rendering",
    "alembic_extensions.backfill",
    "alembic_extensions.not_null",
    "pgkeel.database.cluster",
)
CHECK_IN_A_FRESH_PROCESS = """\
import sys

sys.path.insert(0, {tests!r})
from alembic import command
from alembic.config import Config

from alembic_project import load_models

load_models("tenancy")
command.check(Config({ini!r}))
print(sorted(name for name in {modules!r} if name in sys.modules))
"""


def test_a_no_op_check_imports_neither_the_rewrite_nor_the_renderers(
    make_project: Callable[[str], Project],
) -> None:
    """What only writing a revision or running migrations needs stays unloaded by a check."""
    project = make_project("tenancy")
    project.revision("create invoices")
    project.upgrade()
    script = CHECK_IN_A_FRESH_PROCESS.format(
        tests=str(Path(__file__).parent),
        ini=str(project.directory / "alembic.ini"),
        modules=NOT_FOR_A_COMPARISON,
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_models_in_the_default_schema_alone_do_not_have_alembic_list_the_schemas(
    tmp_path: Path, databases: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``include_schemas`` follows the models: none names a schema, none is listed."""
    from sqlalchemy.engine.reflection import Inspector  # noqa: PLC0415

    listed: list[object] = []
    get_schema_names = Inspector.get_schema_names

    def spy(self: Inspector, **kw: object) -> list[str]:
        listed.append(self)
        return get_schema_names(self, **kw)

    monkeypatch.setenv("DATABASE_URL", databases[0])
    config = _project(tmp_path, databases[0], 3)
    command.revision(config, message="create", autogenerate=True)
    command.upgrade(config, "head")
    monkeypatch.setattr(Inspector, "get_schema_names", spy)
    command.check(config)
    assert listed == []
