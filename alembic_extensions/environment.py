"""``run_migrations``: the one call an ``env.py`` makes to get pgkeel's migration standards.

It configures the Alembic context (the pgkeel plugin's comparators, sequential revision ids,
``include_object``, rendering of custom types, the safe-DDL rewrite of operations on existing
tables) and runs the migrations online or offline with ``lock_timeout``/``statement_timeout``
(an offline script also stops ``psql`` at its first error).
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from alembic.util import CommandError
from sqlalchemy import CheckConstraint, Connection, Engine, MetaData, create_engine, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError, SAWarning
from sqlalchemy.pool import NullPool

from alembic_extensions.plugin import RULES_OPTION, SETTINGS_OPTION
from alembic_extensions.registration import PLUGIN_NAME, ensure_plugin, ensure_registered
from alembic_extensions.revisions import (
    check_single_head,
    check_unique_numbers,
    drop_empty_revisions,
    number_revisions,
    writes_revision_files,
)
from alembic_extensions.timeouts import TimeoutGuard, Timeouts
from pgkeel._values import Value, field
from pgkeel.database.url import DATABASE_URL_ENV, parse_database_url
from pgkeel.errors import SettingsError
from pgkeel.settings import DEFAULT_SETTINGS, Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from types import ModuleType

    from alembic.config import Config
    from alembic.operations.ops import MigrationScript
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import Table
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

    IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]
    IncludeName = Callable[[str | None, str, Mapping[str, str | None]], bool]
    RenderItem = Callable[[str, Any, Any], str | bool]
    RevisionHook = Callable[[MigrationContext, Any, list[MigrationScript]], None]

COLLECT_METADATA = "pgkeel.collect_metadata"
"""``config.attributes`` key: when true, ``run_migrations`` only records the target metadata."""
COLLECTED_METADATA = "pgkeel.target_metadata"
"""``config.attributes`` key under which the recorded target metadata is stored."""
COLLECTED_SETTINGS = "pgkeel.settings"
"""``config.attributes`` key under which the recorded project settings are stored."""
SPLIT_OPTION = "pgkeel_split"
"""``context.configure()`` option: False keeps a revision with autocommit blocks in one file
(``pgkeel check`` sets it so that ``alembic check`` lists every difference)."""
DRIFT_CHECK = "pgkeel.drift_check"
"""``config.attributes`` key: true while ``pgkeel check`` runs ``alembic check`` (it has run the
rules already, and wants every difference listed in one revision)."""
MIGRATE_INFO_KEY = "pgkeel_migrate"
"""``info`` key of a Table (or Column, Index...) that migrations must leave alone when False."""
_NO_ATTRIBUTES: dict[str, object] = {}  # what ``include`` reads of an object without a __dict__
OFFLINE_URL = "postgresql+psycopg://"
ALEMBIC_PLUGINS = ("alembic.autogenerate.*",)


class MigrationOptions(Value):
    """What ``run_migrations`` does besides Alembic's defaults; built from its keyword settings."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    sequential: bool = True
    safe_ddl: bool = True
    transaction_per_migration: bool = True
    include_object: IncludeObject | None = None
    render_item: RenderItem | None = None
    process_revision_directives: RevisionHook | None = None
    configure: Mapping[str, Any] = field(default_factory=dict)
    settings: Settings = DEFAULT_SETTINGS
    """The project's ``[tool.pgkeel]``."""


_OWN_SETTINGS = (
    "lock_timeout",
    "statement_timeout",
    "sequential",
    "safe_ddl",
    "transaction_per_migration",
    "include_object",
    "render_item",
    "process_revision_directives",
    "settings",
)
_SET_BY_PGKEEL = ("target_metadata", "autogenerate_plugins", "connection", "url")
_MIGRATION_CONTEXT_OPTIONS = (
    "version_table",
    "version_table_schema",
    "version_table_pk",
    "output_encoding",
)
"""Options ``configure()`` hands on to the ``MigrationContext`` through its ``**kw``."""


@cache
def _configure_names() -> tuple[str, ...]:
    """The keywords ``EnvironmentContext.configure()`` declares (what passes through).

    Read once per process: ``inspect.signature`` costs about 0.1 ms, and Alembic's signature
    does not change while it runs.
    """
    from alembic.runtime.environment import EnvironmentContext  # noqa: PLC0415

    parameters = inspect.signature(EnvironmentContext.configure).parameters.values()
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    declared = [parameter.name for parameter in parameters if parameter.kind in named]
    return (*declared, *_MIGRATION_CONTEXT_OPTIONS)


def check_configure_options(options: Mapping[str, Any]) -> None:
    """Refuse a keyword that is neither pgkeel's setting nor one of ``configure()``'s."""
    if not options:  # the usual env.py: nothing to check, and Alembic's signature is not read
        return
    passable = [name for name in _configure_names() if name not in (*_SET_BY_PGKEEL, "self")]
    for name in options:
        if name in passable:
            continue
        import difflib  # noqa: PLC0415  # only to word the error

        close = difflib.get_close_matches(name, [*_OWN_SETTINGS, *passable], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        why = "pgkeel sets it itself" if name in _SET_BY_PGKEEL else "it is not a setting"
        raise SettingsError(
            f"run_migrations() got the keyword {name!r}, and {why}.{hint} Fix: use one of "
            f"pgkeel's settings ({', '.join(_OWN_SETTINGS)}) or a keyword of Alembic's "
            "context.configure(); see docs/alembic.md."
        )


def _collections(metadata: MetaData | Sequence[MetaData]) -> list[MetaData]:
    return [metadata] if isinstance(metadata, MetaData) else list(metadata)


def migrated_tables(metadata: MetaData | Sequence[MetaData]) -> list[Table]:
    """The tables migrations manage: all of ``metadata`` but those marked ``pgkeel_migrate``."""
    return [
        table
        for collection in _collections(metadata)
        for table in collection.sorted_tables
        if not _left_alone(table)
    ]


def _model_tables(metadata: MetaData | Sequence[MetaData]) -> Iterator[Table]:
    """Every table of ``metadata``, in no particular order (no dependency sort)."""
    for collection in _collections(metadata):
        yield from collection.tables.values()


def _left_alone(item: object) -> bool:
    """Whether the model marks ``item`` ``info={"pgkeel_migrate": False}``."""
    # ``info`` is created on first access: read it only where the models set it.
    return _says_left_alone(getattr(item, "__dict__", _NO_ATTRIBUTES).get("info"))


def _says_left_alone(info: object) -> bool:
    """Whether an ``info`` holds ``{"pgkeel_migrate": False}``."""
    return isinstance(info, dict) and info.get(MIGRATE_INFO_KEY) is False


def _marks_any(metadata: MetaData | Sequence[MetaData]) -> bool:
    """Whether any table, column, constraint or index of the models is marked to be left alone.

    Runs at each command over every item of the models (700 on a 57-table schema): nearly none
    has a non-empty ``info``, and is passed over without a call of its own.
    """
    for table in _model_tables(metadata):
        for items in ((table,), table.columns, table.constraints, table.indexes):
            for item in items:
                info = getattr(item, "__dict__", _NO_ATTRIBUTES).get("info")
                if info and _says_left_alone(info):
                    return True
    return False


def _include_object(
    options: MigrationOptions, metadata: MetaData | Sequence[MetaData]
) -> IncludeObject | None:
    """Leave alone what the models mark ``info={"pgkeel_migrate": False}`` (a view, say).

    Alembic calls the filter for every table, column, index and constraint of each run, on both
    sides: when the models mark nothing, the user's own filter (or none) is all there is.
    """
    user = options.include_object
    if not _marks_any(metadata):
        return user

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:  # noqa: ANN401, FBT001
        if _left_alone(obj) or _left_alone(compare_to):
            return False
        return user is None or user(obj, name, type_, reflected, compare_to)

    return include


def model_schemas(metadata: MetaData | Sequence[MetaData]) -> frozenset[str]:
    """The schemas the model tables name (``__table_args__ = {"schema": "sales"}``)."""
    return frozenset(
        table.schema for table in _model_tables(metadata) if table.schema and not _left_alone(table)
    )


def _include_name(schemas: frozenset[str], user: IncludeName | None) -> IncludeName | None:
    """Compare the default schema and the schemas the models name, and no other.

    ``include_schemas`` makes Alembic reflect every schema of the database: one the models do
    not name (another application's, an extension's) would be proposed for dropping, table by
    table. A ``include_name`` given to ``run_migrations`` runs after this one. When no model
    names a schema, Alembic compares the default schema alone: the user's filter is all there is.
    """
    if not schemas:
        return user

    def include(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
        if type_ == "schema" and name is not None and name not in schemas:
            return False
        return user is None or user(name, type_, parent_names)

    return include


def _render_item(options: MigrationOptions) -> RenderItem:
    user = options.render_item

    def render(type_: str, obj: Any, autogen_context: Any) -> str | bool:  # noqa: ANN401
        if user is not None:
            rendered = user(type_, obj, autogen_context)
            if rendered is not False:
                return rendered
        from alembic_extensions.rendering import render_item  # noqa: PLC0415  # writing only

        return render_item(type_, obj, autogen_context)

    return render


def _check_names(metadata: MetaData | Sequence[MetaData] | None) -> frozenset[str]:
    """The names of the check constraints of the model tables."""
    if metadata is None:
        return frozenset()
    return frozenset(
        str(constraint.name)
        for table in migrated_tables(metadata)
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint) and constraint.name
    )


def _process_revision_directives(options: MigrationOptions) -> RevisionHook:
    def process(
        context: MigrationContext,
        revision: Any,  # noqa: ANN401  # Alembic passes a revision id or a tuple of them
        directives: list[MigrationScript],
    ) -> None:
        drop_empty_revisions(context, directives)
        if options.safe_ddl:
            _make_safe(context, directives)
        if writes_revision_files(context) and (directives or options.process_revision_directives):
            ensure_registered()  # pgkeel's operations are rendered into the file
        if options.sequential and writes_revision_files(context):
            number_revisions(context, directives)
        if options.process_revision_directives is not None:
            options.process_revision_directives(context, revision, directives)

    return process


def _make_safe(context: MigrationContext, directives: list[MigrationScript]) -> None:
    """The safe-DDL rewrite (``alembic_extensions.safety``) of revisions that hold operations.

    The ``-x acknowledge=``, ``-x rename=``, ``-x backfill=`` and the downgrade's answers
    (``-x downgrade_backfill=``, ``-x downgrade_keep_type=``) are read (and a malformed one
    refused) on every run; the rewrite's modules are imported only when there is something to
    rewrite, and ``acknowledge`` only when there is also an ``-x`` argument to read: a no-op
    ``alembic check`` loads neither.
    """
    nothing_to_rewrite = all(
        upgrade.is_empty() for d in directives for upgrade in d.upgrade_ops_list
    )
    if nothing_to_rewrite and not _x_arguments(context):
        return
    from alembic_extensions.acknowledge import (  # noqa: PLC0415
        BACKFILL_ARGUMENT,
        DOWNGRADE_BACKFILL_ARGUMENT,
        KEEP_TYPE_ARGUMENT,
        acknowledged_items,
        column_backfills,
        column_renames,
        x_values,
    )

    acknowledged, renames = acknowledged_items(context), column_renames(context)
    backfills = column_backfills(context, BACKFILL_ARGUMENT)
    downgrade_backfills = column_backfills(context, DOWNGRADE_BACKFILL_ARGUMENT)
    keep_types = frozenset(x_values(context, KEEP_TYPE_ARGUMENT))
    if nothing_to_rewrite:
        return
    from alembic_extensions.loss import LossGuard  # noqa: PLC0415
    from alembic_extensions.safety import make_safe  # noqa: PLC0415

    metadata = context.opts.get("target_metadata")
    guard = LossGuard(
        context.connection,
        acknowledged,
        [],
        renames,
        backfills,
        model_checks=_check_names(metadata),
        downgrade_backfills=downgrade_backfills,
        keep_types=keep_types,
    )
    make_safe(directives, split=context.opts.get(SPLIT_OPTION, True), guard=guard)


def _x_arguments(context: MigrationContext) -> list[str]:
    """The ``-x`` arguments of the Alembic command (none when code runs Alembic without them)."""
    environment = context.environment_context
    return environment.get_x_argument(as_dictionary=False) if environment is not None else []


def _configure_kwargs(
    env: EnvironmentContext, metadata: MetaData | Sequence[MetaData], options: MigrationOptions
) -> dict[str, Any]:
    plugins = [*ALEMBIC_PLUGINS, PLUGIN_NAME]
    schemas = model_schemas(metadata)
    return {
        SETTINGS_OPTION: options.settings,
        RULES_OPTION: not env.config.attributes.get(DRIFT_CHECK),
        SPLIT_OPTION: not env.config.attributes.get(DRIFT_CHECK),
        "target_metadata": metadata,
        "transaction_per_migration": options.transaction_per_migration,
        "include_object": _include_object(options, metadata),
        "render_item": _render_item(options),
        "process_revision_directives": _process_revision_directives(options),
        "autogenerate_plugins": plugins,
        "compare_type": True,
        "compare_server_default": True,
        # Another schema is compared only when a model names one (``_include_name``): without
        # one, Alembic need not list the database's schemas at all.
        "include_schemas": bool(schemas),
        **options.configure,
        "include_name": _include_name(schemas, options.configure.get("include_name")),
    }


def project_settings(config: Config) -> Settings:
    """``[tool.pgkeel]`` of the project: the pyproject.toml Alembic reads, else the nearest one.

    The search starts in the directory of the Alembic configuration file (``alembic.ini``),
    else in the current directory, and goes upward.
    """
    toml = Path(config.toml_file_name) if config.toml_file_name else None
    if toml is not None and toml.is_file():  # Alembic's command line names it even when absent
        return load_settings(toml)
    start = Path(config.config_file_name).parent if config.config_file_name else None
    return load_settings(start=start)


NO_DATABASE = "No database to migrate."
"""How the error begins when no URL is given: ``pgkeel check`` adds its own way out to it."""


def resolve_url(env: EnvironmentContext, url: str | URL | None, *, offline: bool) -> str | URL:
    """The explicit URL, else ``DATABASE_URL``, else ``sqlalchemy.url``; offline needs none."""
    if url is not None:
        return url
    raw = os.environ.get(DATABASE_URL_ENV)
    if raw:
        return parse_database_url(raw)
    configured = _ini_url(env.config)
    if configured:
        return make_url(configured)
    if offline:
        return OFFLINE_URL
    ini = env.config.config_file_name
    where = (
        f"sqlalchemy.url in {ini}"
        if ini is not None and Path(ini).is_file()
        else "sqlalchemy.url in alembic.ini (there is none: the Alembic configuration is in "
        f"{env.config.toml_file_name or 'given in code'})"
    )
    raise CommandError(
        f"{NO_DATABASE} Tried: the url argument of run_migrations(), the "
        f"{DATABASE_URL_ENV} environment variable, {where}. Fix: export "
        f"{DATABASE_URL_ENV}=postgresql+psycopg://owner@host:5432/dbname, the role that owns the "
        "tables (or `pgkeel db start` then export DATABASE_URL=$(pgkeel db url --owner); a "
        'service made from pgkeel\'s template: eval "$(make -s db)", which exports '
        "MIGRATION_DATABASE_URL); `alembic upgrade head --sql` needs no database."
    )


LOG_FORMAT = "%(levelname)-5.5s [%(name)s] %(message)s"
"""Alembic's own format (from its ``alembic.ini`` template): ``INFO  [alembic...] ...``."""
_LOGGERS = ("alembic", "alembic_extensions")


def configure_logging(config: Config) -> None:
    """Show what migrations do: alembic.ini's logging sections, else INFO lines on stderr.

    An ``env.py`` made by ``alembic init`` reads the logging sections of alembic.ini; a
    project whose Alembic configuration is only in pyproject.toml has none, and Alembic then
    prints nothing, not even "Running upgrade 0001 -> 0002". When the application has set up
    no logging at all (no handler on the root logger or on Alembic's), pgkeel adds one handler
    for Alembic's and pgkeel's loggers at INFO; otherwise it leaves logging as it is.
    """
    ini = config.config_file_name
    if ini is not None and Path(ini).is_file() and config.file_config.has_section("loggers"):
        from logging.config import fileConfig  # noqa: PLC0415  # only for such an alembic.ini

        fileConfig(ini, disable_existing_loggers=False)
        return
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    if any(_real_handlers(logger) for logger in [logging.getLogger(), *loggers]):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _real_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers of ``logger`` that output something (Alembic adds a ``NullHandler``)."""
    return [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]


def _ini_url(config: Config) -> str | None:
    """``sqlalchemy.url`` of alembic.ini; None when there is no such file (pyproject.toml only).

    Alembic's command line names ``alembic.ini`` even when the configuration is only in
    pyproject.toml, and reading an option of a missing file raises "No config file
    'alembic.ini' found": that message would hide the one above.
    """
    ini = config.config_file_name
    if ini is None or not Path(ini).is_file():
        return None
    return config.get_main_option("sqlalchemy.url")


_NOT_VALID_CHECK_WARNING = r"Can't validate argument 'dialect_options'"
"""What SQLAlchemy 2.1 says when it reflects a ``CHECK ... NOT VALID`` (or ``NO INHERIT``): it
hands the options it read to ``CheckConstraint(dialect_options=...)``, which has no such keyword,
and keeps the check without them. Alembic does not compare checks, so nothing is lost."""


@contextmanager
def _reflecting_not_valid_checks() -> Iterator[None]:
    """Autogenerate on a table with a ``NOT VALID`` check, without that one warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NOT_VALID_CHECK_WARNING, category=SAWarning)
        yield


_STOP_ON_ERROR = "\\set ON_ERROR_STOP on"
"""The first line of every offline script: ``psql`` stops at the first failed statement.

Without it (psql's default), a failed step is followed by the next ones and by the
``alembic_version`` update: a migration that half ran is recorded as done. A psql meta-command,
not SQL (so written as is, with no ``;``): squawk reads past it; another client gets a syntax
error on the script's first statement."""


def _run_offline(
    env: EnvironmentContext, url: str | URL, kwargs: dict[str, Any], options: MigrationOptions
) -> None:
    env.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **kwargs)
    _register_for_migrations(env)
    _check_history(env, options)
    env.get_context().impl.static_output(_STOP_ON_ERROR)
    for statement in options.timeouts.offline_sql():
        env.execute(statement)
    with env.begin_transaction():
        env.run_migrations()


def _run_on(
    env: EnvironmentContext,
    connection: Connection,
    kwargs: dict[str, Any],
    options: MigrationOptions,
) -> None:
    env.configure(connection=connection, **kwargs)
    _register_for_migrations(env)
    _check_history(env, options)
    with (
        TimeoutGuard(connection, options.timeouts),
        _reflecting_not_valid_checks(),
        env.begin_transaction(),
    ):
        env.run_migrations()


def _run_online(
    env: EnvironmentContext,
    url: str | URL | None,
    kwargs: dict[str, Any],
    options: MigrationOptions,
) -> None:
    shared = env.config.attributes.get("connection")
    if shared is not None:
        _run_on_given(env, shared, lambda connection: _run_on(env, connection, kwargs, options))
        return
    engine = create_engine(resolve_url(env, url, offline=False), poolclass=NullPool)
    try:
        with _connect(engine) as connection:
            _run_on(env, connection, kwargs, options)
    except ProgrammingError as exc:
        from psycopg.errors import InsufficientPrivilege  # noqa: PLC0415  # loaded by then

        if isinstance(exc.orig, InsufficientPrivilege):
            raise _not_allowed(engine, exc.orig) from None
        raise
    finally:
        engine.dispose()


def _not_allowed(engine: Engine, error: BaseException) -> CommandError:
    """One paragraph for a role that may not change the schema (the runtime role, most often)."""
    reason = (str(error).strip().splitlines() or ["permission denied"])[0]
    return CommandError(
        f"The role {engine.url.username!r} may not change the schema: {reason}. Migrations run "
        "as the role that owns the tables, not as the runtime role row-level security binds. "
        "Fix: point the migration at the owner (a service made from pgkeel's template: "
        "MIGRATION_DATABASE_URL, which `make db` prints; pgkeel's development server: "
        "$(pgkeel db url --owner)). Nothing was changed: the migration's transaction rolled back."
    )


def _answered(error: BaseException | None) -> bool:
    """Whether the server answered and refused (a role, a database, a password): not down."""
    text_ = str(error or "")
    return "FATAL:" in text_ or "does not exist" in text_ or "authentication failed" in text_


def _connect(engine: Engine) -> Connection:
    """A connection, or one paragraph (Alembic prints it without a traceback) when none answers."""
    try:
        return engine.connect()
    except OperationalError as exc:
        reason = (str(exc.orig or exc).strip().splitlines() or ["no reason given"])[0]
        where = engine.url.render_as_string(hide_password=True)
        if _answered(exc.orig):
            raise CommandError(
                f"The database server at {where} refused the connection: {reason}. Fix: check "
                "the role, its password and the database name in MIGRATION_DATABASE_URL (or "
                "DATABASE_URL); a service made from pgkeel's template: `make db` prints the "
                "URLs of its development server."
            ) from None
        raise CommandError(
            f"The database at {where} does not answer: {reason}. Fix: start it (a service made "
            "from pgkeel's template: `make db`, then export the URLs it prints), or set "
            "MIGRATION_DATABASE_URL (or DATABASE_URL) to one that answers."
        ) from None


def _run_on_given(
    env: EnvironmentContext, given: object, work: Callable[[Connection], None]
) -> None:
    """``work`` on what ``config.attributes["connection"]`` holds: a connection or an engine.

    pytest-alembic and other test harnesses put an ``Engine`` there, async services an
    ``AsyncEngine``; a ``Connection`` is used as it is.
    """
    from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: PLC0415  # needed only here

    if isinstance(given, Connection):
        work(given)
    elif isinstance(given, Engine):
        with given.connect() as connection:
            work(connection)
    elif isinstance(given, AsyncEngine):
        _run_async(given, work)
    else:
        where = env.config.config_file_name or "the Alembic config"
        raise CommandError(
            f"config.attributes['connection'] holds {type(given).__name__} {given!r}; "
            "run_migrations() needs a SQLAlchemy Connection, Engine or AsyncEngine there. "
            "Fix: put one of those there, or nothing to use the URL "
            f"({DATABASE_URL_ENV}, sqlalchemy.url in {where})."
        )


def _run_async(given: AsyncEngine, work: Callable[[Connection], None]) -> None:
    """Run ``work`` on the sync face of an ``AsyncEngine``'s connection, in a loop of its own."""
    import asyncio  # noqa: PLC0415  # an async service's engine only
    import concurrent.futures  # noqa: PLC0415

    async def migrate() -> None:
        async with given.connect() as connection:
            await connection.run_sync(work)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(migrate())
        return
    # Called from inside a running loop (an async test): run ours in a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, migrate()).result()


def _register_for_migrations(env: EnvironmentContext) -> None:
    """Register pgkeel's operations when migrations run (``op.create_trigger`` must exist).

    A comparison (``revision --autogenerate``, ``check``) runs no migration: its hook registers
    them only when a revision that holds operations is written.
    """
    if env.get_context().opts.get("revision_context") is None:
        ensure_registered()


def _check_history(env: EnvironmentContext, options: MigrationOptions) -> None:
    """Before a new revision is compared: one head, or a clear error (after ``configure``)."""
    context = env.get_context()
    revision_context = context.opts.get("revision_context")
    head = getattr(revision_context, "command_args", {}).get("head")
    writes = revision_context is not None and writes_revision_files(context)
    if options.sequential and writes and head in (None, "head"):
        check_single_head(env.script)


def run_migrations(  # noqa: PLR0913  # each setting is a keyword of its own, checked by Python
    context: EnvironmentContext | ModuleType,
    target_metadata: MetaData | Sequence[MetaData],
    url: str | URL | None = None,
    *,
    lock_timeout: str | None = Timeouts.lock_timeout,
    statement_timeout: str | None = Timeouts.statement_timeout,
    sequential: bool = True,
    safe_ddl: bool = True,
    transaction_per_migration: bool = True,
    include_object: IncludeObject | None = None,
    render_item: RenderItem | None = None,
    process_revision_directives: RevisionHook | None = None,
    settings: Settings | None = None,
    **configure: Any,  # noqa: ANN401  # Alembic's configure() keywords, checked by name
) -> None:
    """Configure Alembic with pgkeel's standards and run the migrations (the whole ``env.py``).

    ``url`` defaults to ``DATABASE_URL``, then ``sqlalchemy.url``. Settings (keyword-only):
    ``lock_timeout`` (default ``"5s"``), ``statement_timeout`` (default ``"1h"``; None keeps
    the server's), ``sequential``, ``safe_ddl``, ``transaction_per_migration`` (default True),
    ``include_object`` and ``process_revision_directives`` (each runs after pgkeel's own),
    ``render_item`` (runs before pgkeel's: what it renders wins), ``settings`` (default: the
    project's ``[tool.pgkeel]``). Any other keyword must be one of Alembic's
    ``context.configure()`` and goes there; an unknown one is an error.
    """
    env = cast("EnvironmentContext", context)
    try:
        check_configure_options(configure)
        project = settings if settings is not None else project_settings(env.config)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None
    options = MigrationOptions(
        timeouts=Timeouts(lock_timeout=lock_timeout, statement_timeout=statement_timeout),
        sequential=sequential,
        safe_ddl=safe_ddl,
        transaction_per_migration=transaction_per_migration,
        include_object=include_object,
        render_item=render_item,
        process_revision_directives=process_revision_directives,
        configure=configure,
        settings=project,
    )
    if env.config.attributes.get(COLLECT_METADATA):
        env.config.attributes[COLLECTED_METADATA] = target_metadata
        env.config.attributes[COLLECTED_SETTINGS] = project
        return
    ensure_plugin()
    configure_logging(env.config)
    if options.sequential:
        check_unique_numbers(env.script)
    kwargs = _configure_kwargs(env, target_metadata, options)
    if env.is_offline_mode():
        _run_offline(env, resolve_url(env, url, offline=True), kwargs, options)
    else:
        _run_online(env, url, kwargs, options)
