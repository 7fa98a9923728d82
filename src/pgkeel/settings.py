"""Project-wide settings: the ``[tool.pgkeel]`` table of the service's pyproject.toml.

An existing project adopts pgkeel without an opt-out on every table: it turns a rule off or
down to a warning, and names its timestamp columns, once::

    [tool.pgkeel.rules]
    plural-table-name = "warn"   # reported, does not stop autogenerate or fail `pgkeel check`
    uuid-primary-key = "off"     # not checked at all

    [tool.pgkeel.timestamps]
    updated = "modified_at"      # the column the `timestamps` rule asks for (created: created_at)

    [tool.pgkeel.doctor]         # `pgkeel doctor`'s thresholds, validated by pgkeel.doctor
    ...

``load_settings()`` finds pyproject.toml from the current directory upward (or reads the path it
is given); ``run_migrations`` and ``pgkeel check`` read it from the directory of the Alembic
configuration. Everything is validated when it is read: an unknown key, rule id or level is a
``SettingsError`` naming it, the file, and the valid values. Only the ``doctor`` sub-table is
handed over as it is written (``Settings.doctor``), for ``pgkeel.doctor`` to validate.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args

from pgkeel._values import Value, field
from pgkeel.errors import SettingsError
from pgkeel.naming import is_snake_case
from pgkeel.rules import check_rule_id

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

Level = Literal["on", "warn", "off"]
"""``on``: a violation stops autogenerate and fails ``pgkeel check`` (the default); ``warn``:
it is reported and nothing stops; ``off``: the rule is not checked."""
LEVELS: Final[tuple[Level, ...]] = get_args(Level)
PYPROJECT: Final = "pyproject.toml"
TABLE: Final = "[tool.pgkeel]"
_KEYS: Final = ("rules", "timestamps", "doctor")
_TIMESTAMP_KEYS: Final = ("created", "updated")


class TimestampColumns(Value):
    """The names of the creation and last-update timestamp columns the ``timestamps`` rule wants."""

    created: str = "created_at"
    updated: str = "updated_at"


class Settings(Value):
    """The validated ``[tool.pgkeel]`` of one project (the defaults when it has none)."""

    rules: Mapping[str, Level] = field(default_factory=lambda: MappingProxyType({}))
    """The level of each rule the project sets; the others are ``on``."""
    timestamps: TimestampColumns = field(default_factory=TimestampColumns)
    doctor: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``[tool.pgkeel.doctor]`` as written: ``pgkeel.doctor`` validates it."""
    path: Path | None = None
    """The pyproject.toml read, or None for the defaults."""

    def level(self, rule_id: str) -> Level:
        """How ``rule_id`` applies in this project: ``on``, ``warn`` or ``off``."""
        return self.rules.get(rule_id, "on")

    def checks(self, rule_id: str) -> bool:
        """Whether ``rule_id`` is checked at all (``on`` or ``warn``)."""
        return self.level(rule_id) != "off"


DEFAULT_SETTINGS: Final = Settings()


def find_pyproject(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest pyproject.toml in ``start`` (default: the current directory) or above it."""
    here = Path(start) if start is not None else Path.cwd()
    here = here.resolve()
    for directory in (here, *here.parents):
        candidate = directory / PYPROJECT
        if candidate.is_file():
            return candidate
    return None


def load_settings(
    path: str | os.PathLike[str] | None = None, *, start: str | os.PathLike[str] | None = None
) -> Settings:
    """The ``[tool.pgkeel]`` settings of ``path``, else of the nearest pyproject.toml.

    ``path`` is a pyproject.toml (or the directory holding it) and must exist; without it the
    search starts at ``start`` (default: the current directory) and goes upward. No file, or a
    file without ``[tool.pgkeel]``, gives the defaults.
    """
    found = _explicit(Path(path)) if path is not None else find_pyproject(start)
    if found is None:
        return DEFAULT_SETTINGS
    content = found.read_bytes()
    known = _LOADED.get(found)
    if known is not None and known[0] == content:
        return known[1]
    settings = _parse_document(found, content)
    _LOADED[found] = (content, settings)
    return settings


_LOADED: dict[Path, tuple[bytes, Settings]] = {}
"""The settings last read from each file, with the file's content then.

A process that runs Alembic again (a test suite, ``command.check`` in a loop) parses a file again
only when its content changed (comparing bytes costs a small part of parsing the TOML);
``Settings`` are immutable, so one object serves every caller.
"""


def _parse_document(found: Path, content: bytes) -> Settings:
    try:
        document = tomllib.loads(content.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{found} is not valid TOML: {exc}. Fix: correct the file.") from None
    table = document.get("tool", {}).get("pgkeel")
    if table is None:
        return Settings(path=found)
    return parse_settings(table, found)


def _explicit(path: Path) -> Path:
    candidate = path / PYPROJECT if path.is_dir() else path
    if not candidate.is_file():
        raise SettingsError(
            f"No pgkeel settings file at {path}: there is no such file. Fix: pass the path of "
            "the project's pyproject.toml (or its directory), or none to search from the "
            "current directory upward."
        )
    return candidate


def parse_settings(table: Mapping[str, Any], path: Path | None = None) -> Settings:
    """Validate a ``[tool.pgkeel]`` table (as ``tomllib`` reads it) into ``Settings``."""
    where = f"{TABLE} in {path}" if path is not None else TABLE
    _expect_table(table, where)
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise SettingsError(
            f"Unknown key {unknown[0]!r} in {where}. Fix: use only {', '.join(_KEYS)} "
            "(see docs/alembic.md, 'Project settings')."
        )
    doctor = table.get("doctor", {})
    _expect_table(doctor, _sub(where, "doctor"))
    return Settings(
        rules=MappingProxyType(_rules(table.get("rules", {}), _sub(where, "rules"))),
        timestamps=_timestamps(table.get("timestamps", {}), _sub(where, "timestamps")),
        doctor=MappingProxyType(dict(doctor)),
        path=path,
    )


def _sub(where: str, key: str) -> str:
    return where.replace(TABLE, f"[tool.pgkeel.{key}]", 1)


def _expect_table(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise SettingsError(
            f"{where} must be a table, not {type(value).__name__} {value!r}. Fix: write it as "
            "a [section] or an inline table { key = value }."
        )


def _rules(table: object, where: str) -> dict[str, Level]:
    _expect_table(table, where)
    levels: dict[str, Level] = {}
    for rule_id, level in cast("dict[str, object]", table).items():
        check_rule_id(rule_id, where, settable=True)
        if level not in LEVELS:
            raise SettingsError(
                f"Rule {rule_id!r} in {where} is set to {level!r}. Fix: set it to one of "
                f"{', '.join(repr(item) for item in LEVELS)} (on: a violation stops "
                "autogenerate; warn: it is reported only; off: it is not checked)."
            )
        levels[rule_id] = level
    return levels


def _timestamps(table: object, where: str) -> TimestampColumns:
    _expect_table(table, where)
    names = cast("dict[str, object]", table)
    unknown = sorted(set(names) - set(_TIMESTAMP_KEYS))
    if unknown:
        raise SettingsError(
            f"Unknown key {unknown[0]!r} in {where}. Fix: use created and updated, the names "
            "of the creation and last-update timestamp columns."
        )
    for key, name in names.items():
        if not isinstance(name, str) or not is_snake_case(name):
            raise SettingsError(
                f"{key} = {name!r} in {where} is not a column name. Fix: give the snake_case "
                'name of the column, for example updated = "modified_at".'
            )
    return TimestampColumns(**cast("dict[str, str]", names))
