"""One library's side of the ``alembic_peers`` benchmark, in a process of its own.

``python -m bench._alembic_peers_worker LIBRARY URL DIRECTORY TABLES`` builds the models, writes
the library's ``env.py``, autogenerates and applies the first migration, prints ``{"ready":
...}``, then answers each ``check`` line on stdin with the wall and CPU seconds and the
statements of one ``alembic check``. A process per library: sqlalchemy-declarative-extensions and
alembic-utils register their comparators in Alembic's global dispatch when imported, so the
three cannot share one.

Every library declares the same tables (a ``tenants`` table and ``TABLES`` tenant tables with an
id, ``tenant_id``, a unique ``code`` and ``created_at``/``updated_at``) and, as far as it can
express them, the same database objects: pgkeel's trigger function and ``updated_at`` trigger
per table, row-level security enabled and forced, and pgkeel's tenant policy per table.
"""

from __future__ import annotations

import compileall
import gc
import io
import json
import sys
import time
import types
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, ForeignKey, MetaData, create_engine, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench._statements import counting
from pgkeel.ddl import UPDATED_AT_FUNCTION, updated_at_trigger_name
from pgkeel.tenancy import CURRENT_TENANT_SQL, POLICY_NAME, TENANT_COLUMN

MODELS = "bench_alembic_peers_models"
FUNCTION = UPDATED_AT_FUNCTION.name
CONDITION = f"{TENANT_COLUMN} = {CURRENT_TENANT_SQL}"

PGKEEL_ENV = """\
import sys

from alembic import context

from alembic_extensions import run_migrations

models = sys.modules[context.config.get_main_option("models")]
run_migrations(context, models.Base.metadata, url=context.config.get_main_option("sqlalchemy.url"))
"""

PLAIN_ENV = """\
import sys

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

{register}
models = sys.modules[context.config.get_main_option("models")]
engine = create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=models.Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

# sqlalchemy-declarative-extensions: only the object types the models declare are compared.
DECLARATIVE_EXTENSIONS_REGISTER = """\
from sqlalchemy_declarative_extensions import register_alembic_events

register_alembic_events(
    databases=False, schemas=False, views=False, roles=False, grants=False,
    functions=True, procedures=False, triggers=True, rows=False,
)
"""

ALEMBIC_UTILS_REGISTER = """\
from alembic_utils.replaceable_entity import register_entities

register_entities(sys.modules[context.config.get_main_option("models")].ENTITIES)
"""


def _table_name(number: int) -> str:
    return f"items_{number:03d}"


def _pgkeel_models(tables: int) -> types.ModuleType:
    """pgkeel's mixins: the trigger, row-level security and the policy come with them."""
    from pgkeel import TenantMixin, TimestampMixin, UUIDPrimaryKeyMixin  # noqa: PLC0415
    from pgkeel.base import PgkeelDeclarative, new_metadata  # noqa: PLC0415
    from pgkeel.types import TYPE_ANNOTATION_MAP  # noqa: PLC0415

    class Base(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map: ClassVar[dict[Any, Any]] = TYPE_ANNOTATION_MAP

    type("Tenant", (UUIDPrimaryKeyMixin, TimestampMixin, Base), {"__annotations__": {}})
    for number in range(1, tables + 1):
        namespace: dict[str, Any] = {
            "__tablename__": _table_name(number),
            "__annotations__": {"code": Mapped[str]},
            "code": mapped_column(unique=True),
        }
        type(
            f"Item{number:03d}", (UUIDPrimaryKeyMixin, TimestampMixin, TenantMixin, Base), namespace
        )
    return _module(Base)


def _plain_tables(base: type[DeclarativeBase], tables: int) -> None:
    """The same tables written by hand, for the libraries that only add database objects."""

    def timestamps() -> dict[str, Any]:
        return {
            "__annotations__": {"created_at": Mapped[datetime], "updated_at": Mapped[datetime]},
            "created_at": mapped_column(DateTime(timezone=True), server_default=func.now()),
            "updated_at": mapped_column(DateTime(timezone=True), server_default=func.now()),
        }

    def keyed(name: str, extra: dict[str, Any]) -> dict[str, Any]:
        namespace = timestamps()
        namespace["__tablename__"] = name
        namespace["__annotations__"]["id"] = Mapped[uuid.UUID]
        namespace["id"] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
        for key, value in extra.items():
            if key == "__annotations__":
                namespace["__annotations__"].update(value)
            else:
                namespace[key] = value
        return namespace

    type("Tenant", (base,), keyed("tenants", {}))
    for number in range(1, tables + 1):
        extra = {
            "__annotations__": {"tenant_id": Mapped[uuid.UUID], "code": Mapped[str]},
            "tenant_id": mapped_column(ForeignKey("tenants.id"), index=True),
            "code": mapped_column(unique=True),
        }
        type(f"Item{number:03d}", (base,), keyed(_table_name(number), extra))


def _declarative_extensions_models(tables: int) -> types.ModuleType:
    """The function and the triggers; it has no row-level security and no policies."""
    from sqlalchemy_declarative_extensions import declarative_database  # noqa: PLC0415
    from sqlalchemy_declarative_extensions.dialects.postgresql import (  # noqa: PLC0415
        Function,
        Trigger,
    )

    function = Function(FUNCTION, UPDATED_AT_FUNCTION.source, returns="trigger", language="plpgsql")
    triggers = [
        Trigger.before(
            "update",
            on=_table_name(number),
            execute=FUNCTION,
            name=updated_at_trigger_name(_table_name(number)),
        ).for_each_row()
        for number in range(1, tables + 1)
    ]

    class Base(DeclarativeBase):
        metadata = MetaData()
        functions: ClassVar[list[Any]] = [function]

    Base.triggers = triggers  # type: ignore[attr-defined]
    declarative_database(Base)
    _plain_tables(Base, tables)
    return _module(Base)


def _alembic_utils_models(tables: int) -> types.ModuleType:
    """The function, the triggers and the policies; it cannot enable row-level security."""
    from alembic_utils.pg_function import PGFunction  # noqa: PLC0415
    from alembic_utils.pg_policy import PGPolicy  # noqa: PLC0415
    from alembic_utils.pg_trigger import PGTrigger  # noqa: PLC0415

    class Base(DeclarativeBase):
        metadata = MetaData()

    _plain_tables(Base, tables)
    entities: list[Any] = [
        PGFunction(
            schema="public",
            signature=f"{FUNCTION}()",
            definition=(
                f"RETURNS trigger LANGUAGE plpgsql AS $function${UPDATED_AT_FUNCTION.source}"
                "$function$"
            ),
        )
    ]
    for number in range(1, tables + 1):
        table = f"public.{_table_name(number)}"
        entities.append(
            PGTrigger(
                schema="public",
                signature=updated_at_trigger_name(_table_name(number)),
                on_entity=table,
                definition=f"BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION "
                f"public.{FUNCTION}()",
            )
        )
        entities.append(
            PGPolicy(
                schema="public",
                signature=POLICY_NAME,
                on_entity=table,
                definition=f"AS PERMISSIVE FOR ALL TO public USING ({CONDITION}) "
                f"WITH CHECK ({CONDITION})",
            )
        )
    module = _module(Base)
    module.ENTITIES = entities  # type: ignore[attr-defined]
    return module


def _module(base: type) -> types.ModuleType:
    module = types.ModuleType(MODELS)
    module.Base = base  # type: ignore[attr-defined]
    sys.modules[MODELS] = module
    return module


LIBRARIES: dict[str, tuple[Callable[[int], types.ModuleType], str]] = {
    "pgkeel": (_pgkeel_models, PGKEEL_ENV),
    "declarative-extensions": (
        _declarative_extensions_models,
        PLAIN_ENV.format(register=DECLARATIVE_EXTENSIONS_REGISTER),
    ),
    "alembic-utils": (_alembic_utils_models, PLAIN_ENV.format(register=ALEMBIC_UTILS_REGISTER)),
}


def _config(directory: Path, url: str) -> Config:
    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", str(directory / "scripts"))
    config.set_main_option("version_locations", str(directory / "versions"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("models", MODELS)
    return config


def _prepare(library: str, directory: Path) -> None:
    scripts = directory / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "env.py").write_text(LIBRARIES[library][1])
    template = Path(command.__file__).parent / "templates" / "generic" / "script.py.mako"
    (scripts / "script.py.mako").write_text(template.read_text())
    (directory / "versions").mkdir()


def _check(config: Config) -> dict[str, Any]:
    """One ``alembic check``, after a full garbage collection left out of its timings.

    Otherwise a collection that the heap makes due (100-150 ms here, against 250 ms for a
    check) falls into whichever check crosses the threshold, on one side of a pair or the other.
    """
    gc.collect()
    with counting() as sent:
        started, cpu = time.perf_counter(), time.process_time()
        command.check(config)  # raises when the models and the database differ
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "statements": len(sent)}


def _create_directly(library: str, models: types.ModuleType, url: str) -> None:
    """A peer's database without its migration: the tables, then the library's own DDL.

    Neither peer's autogenerated first migration can be used: sqlalchemy-declarative-extensions
    writes each trigger before the table it is on (the upgrade fails), and alembic-utils cannot
    autogenerate a trigger or policy with its table (it creates every entity in the live
    database to compare it) and takes tens of minutes here to order 201 entities.
    """
    if library == "declarative-extensions":
        from sqlalchemy_declarative_extensions import register_sqlalchemy_events  # noqa: PLC0415

        register_sqlalchemy_events(models.Base.metadata, functions=True, triggers=True)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            models.Base.metadata.create_all(connection)
            for entity in getattr(models, "ENTITIES", ()):
                connection.execute(entity.to_sql_statement_create())
    finally:
        engine.dispose()


def main(argv: list[str]) -> int:
    """Migrate, then answer ``check`` requests until stdin closes."""
    library, url, directory, tables = argv[0], argv[1], Path(argv[2]), int(argv[3])
    answers, sys.stdout = sys.stdout, sys.stderr  # what the libraries print stays off the protocol
    models = LIBRARIES[library][0](tables)
    _prepare(library, directory)
    config = _config(directory, url)
    if library != "pgkeel":
        _create_directly(library, models, url)
    else:
        command.revision(config, message="first", autogenerate=True)
        command.upgrade(config, "head")
    # Bytecode for env.py and the revision files, as a first run leaves it: where
    # PYTHONDONTWRITEBYTECODE is set, every check would otherwise compile them again (pgkeel's
    # 100-table revision file: about 20 ms of each check; the peers' projects have none).
    compileall.compile_dir(str(directory), quiet=1)
    print(json.dumps({"ready": library}), file=answers, flush=True)
    for line in sys.stdin:
        if line.strip() == "check":
            print(json.dumps(_check(config)), file=answers, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
