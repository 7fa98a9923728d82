"""The plugin's options, read once from the command line or ``[tool.pytest.ini_options]``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import MetaData

from pgkeel.errors import PgkeelError

if TYPE_CHECKING:
    import pytest
    from sqlalchemy.engine import Connection

OPTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "url",
        "",
        "PostgreSQL server URL for the tests (overrides DATABASE_URL; default: throwaway cluster)",
    ),
    (
        "schema",
        "",
        (
            "'module:attr' building the schema once per session: a MetaData (create_all) or a "
            "callable taking a SQLAlchemy Connection (for example one that runs migrations)"
        ),
    ),
    ("image", "postgres:16-alpine", "Docker image when the server comes from testcontainers"),
    (
        "server_settings",
        "",
        (
            "server settings of a throwaway cluster, NAME=VALUE pairs separated by spaces "
            "(for example 'shared_preload_libraries=pg_stat_statements')"
        ),
    ),
    (
        "source",
        "auto",
        (
            "where the server comes from: 'auto' (the URL, DATABASE_URL, PostgreSQL binaries, "
            "testcontainers: the first that serves) or 'testcontainers' (always a container)"
        ),
    ),
    (
        "postgres_version",
        "",
        (
            "the PostgreSQL major version the project targets: installed binaries of that "
            "major are preferred, and the report header says when the server differs"
        ),
    ),
    (
        "version_mismatch",
        "warn",
        "'warn' (the header says so) or 'error' (the run stops) when the server's major differs",
    ),
)
SOURCES = ("auto", "testcontainers")
MISMATCH_ACTIONS = ("warn", "error")


class SchemaBuilder(Protocol):
    """Builds the schema in the template database on the given connection (then committed)."""

    def __call__(self, connection: Connection, /) -> None:
        """Create every table, function and policy the tests need."""


DEFAULT_SERVER_SETTINGS = {"lock_timeout": "60s"}
"""Settings of a throwaway cluster unless ``pgkeel_server_settings`` gives others.

``lock_timeout``: a test that waits for a lock another test leaked (a connection left holding
``LOCK TABLE`` or an open transaction) fails with ``canceling statement due to lock timeout``
after a minute, instead of hanging the run forever. No ordinary test waits that long.
"""


@dataclass(frozen=True)
class PluginConfig:
    """Every option of ``pgkeel.testing`` in one value."""

    url: str
    schema: str
    image: str
    server_settings: str = ""
    source: str = "auto"
    postgres_version: str = ""
    version_mismatch: str = "warn"

    def wanted_major(self) -> int | None:
        """``postgres_version`` as a major version number; an error for anything else."""
        if not self.postgres_version:
            return None
        if not self.postgres_version.isdigit():
            raise PgkeelError(
                f"pgkeel_postgres_version = {self.postgres_version!r} is not a PostgreSQL major "
                "version. Fix: set it to a number such as 17 in [tool.pytest.ini_options]."
            )
        if self.version_mismatch not in MISMATCH_ACTIONS:
            raise PgkeelError(
                f"pgkeel_version_mismatch = {self.version_mismatch!r} is neither 'warn' nor "
                "'error'. Fix: set one of them in [tool.pytest.ini_options]."
            )
        return int(self.postgres_version)

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> PluginConfig:
        """Command-line options win over ini settings, which win over the defaults."""
        values = {name: _option(config, name) for name, _default, _help in OPTIONS}
        return cls(**values)

    def container_only(self) -> bool:
        """Whether the server must come from testcontainers; raises for an unknown source."""
        if self.source not in SOURCES:
            raise PgkeelError(
                f"pgkeel_source = {self.source!r} is not a source pgkeel knows. Fix: set it to "
                f"one of {', '.join(SOURCES)} (default: auto)."
            )
        return self.source == "testcontainers"

    def settings(self) -> dict[str, str]:
        """``server_settings`` over the plugin's defaults; raises for a pair without ``=``."""
        settings = dict(DEFAULT_SERVER_SETTINGS)
        for pair in self.server_settings.split():
            name, equals, value = pair.partition("=")
            if not (name and equals):
                raise PgkeelError(
                    f"pgkeel_server_settings has {pair!r}, which is not NAME=VALUE. Fix: write "
                    "pairs such as 'shared_preload_libraries=pg_stat_statements wal_level=logical'."
                )
            settings[name] = value
        return settings

    def schema_builder(self) -> SchemaBuilder | None:
        """The configured schema builder, imported, or None when none is configured."""
        if not self.schema:
            return None
        target = _import_target(self.schema)
        if isinstance(target, MetaData):
            return target.create_all
        if callable(target):
            return target
        raise PgkeelError(
            f"pgkeel_schema = {self.schema!r} is a {type(target).__name__}, not a MetaData or a "
            "callable. Fix: point it at your models' metadata (app.models:Base.metadata) or at a "
            "function that takes a Connection."
        )


def _option(config: pytest.Config, name: str) -> str:
    cli = config.getoption(f"pgkeel_{name}")
    if cli is not None:
        return str(cli)
    return str(config.getini(f"pgkeel_{name}"))


def _import_target(spec: str) -> object:
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise PgkeelError(
            f"pgkeel_schema = {spec!r} must look like 'package.module:attribute' "
            "(for example 'app.models:Base.metadata')."
        )
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise PgkeelError(
            f"pgkeel_schema = {spec!r}: cannot import {module_name!r} ({exc}). Fix: install the "
            "package under test or correct the module path."
        ) from None
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PgkeelError(
                f"pgkeel_schema = {spec!r}: {module_name!r} has no attribute path {attr_path!r}."
            ) from None
    return target


def add_options(parser: pytest.Parser) -> None:
    """Register every option both as ``--pgkeel-NAME`` and as the ini key ``pgkeel_NAME``."""
    group = parser.getgroup("pgkeel", "pgkeel: PostgreSQL for tests")
    for name, default, text in OPTIONS:
        group.addoption(f"--pgkeel-{name}", dest=f"pgkeel_{name}", default=None, help=text)
        parser.addini(f"pgkeel_{name}", text, default=default)
