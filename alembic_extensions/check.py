"""``pgkeel check``: the model rules, then ``alembic check`` (drift), then squawk on the SQL.

Each step reports its findings; the command fails when any step found something. The models
come from the project's own ``env.py`` (run in a mode where ``run_migrations`` only records its
target metadata), so the check sees exactly what autogenerate sees. Given the service's runtime
URL (``--runtime-url``), it also checks that row-level security binds that role.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy import text as sql_text
from sqlalchemy.exc import SQLAlchemyError

from alembic_extensions.environment import (
    COLLECT_METADATA,
    COLLECTED_METADATA,
    COLLECTED_SETTINGS,
    DRIFT_CHECK,
    NO_DATABASE,
    migrated_tables,
    project_settings,
)
from alembic_extensions.rules import check_tables, format_violations, split_by_level
from pgkeel.database import parse_database_url
from pgkeel.errors import PgkeelError, SettingsError
from pgkeel.roles import runtime_role_problems

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import MetaData

STEPS = ("rules", "drift", "squawk")
RUNTIME_ROLE_STEP = "runtime-role"
"""Run only when a runtime URL is given (``--runtime-url``): see ``check_runtime_role``."""
SQUAWK_EXCLUDED = ("prefer-text-field", "prefer-bigint-over-int", "prefer-bigint-over-smallint")
"""Squawk rules pgkeel turns off, and why:

- ``prefer-text-field`` flags every ``varchar(n)``, which pgkeel uses on purpose (``Str255``)
  and Alembic uses for its own ``alembic_version`` table.
- ``prefer-bigint-over-int`` / ``-smallint`` guard ids against running out of 32 bits; pgkeel's
  ids are UUIDs (the ``uuid-primary-key`` rule), and its ``int`` columns (``VersionedMixin``'s
  ``version``, counts, ratings) are bounded by design.
"""


class CheckConfigError(PgkeelError):
    """No Alembic configuration, or an ``env.py`` that does not use ``run_migrations``."""


@dataclass(frozen=True)
class StepResult:
    """What one step of the check found: ``None`` for a pass, else the report."""

    step: str
    findings: str | None
    note: str = ""
    warnings: str | None = None
    """What the step reports without failing (rules set to ``warn`` in ``[tool.pgkeel.rules]``)."""

    @property
    def passed(self) -> bool:
        """Whether the step found nothing."""
        return self.findings is None


def _has_alembic_table(pyproject: Path) -> bool:
    with pyproject.open("rb") as handle:
        return "alembic" in tomllib.load(handle).get("tool", {})


def find_config(path: str | None, cwd: Path) -> Config:
    """The Alembic config: ``path``, else ``alembic.ini``, else ``pyproject.toml``'s own."""
    if path is not None:
        given = Path(path)
        if not given.is_file():
            raise CheckConfigError(f"--config {path}: no such file.")
        if given.name == "pyproject.toml":
            return Config(toml_file=given)
        sibling = given.parent / "pyproject.toml"
        toml = sibling if sibling.is_file() and _has_alembic_table(sibling) else None
        return Config(file_=given, toml_file=toml)
    ini, pyproject = cwd / "alembic.ini", cwd / "pyproject.toml"
    toml = pyproject if pyproject.is_file() and _has_alembic_table(pyproject) else None
    if ini.is_file() or toml is not None:
        return Config(file_=ini if ini.is_file() else None, toml_file=toml)
    raise CheckConfigError(
        f"No Alembic configuration in {cwd}: tried {ini.name} and {pyproject.name} "
        "([tool.alembic]). Fix: run `pgkeel check` in the service's directory, or pass "
        "--config path/to/alembic.ini."
    )


def target_metadata(config: Config) -> MetaData | Sequence[MetaData]:
    """The models' metadata, as the project's ``env.py`` passes it to ``run_migrations``."""
    config.attributes[COLLECT_METADATA] = True
    try:
        script = ScriptDirectory.from_config(config)
        with EnvironmentContext(config, script, fn=lambda _rev, _context: []):
            script.run_env()
    except CommandError as exc:
        raise CheckConfigError(f"Alembic could not load the migration environment: {exc}") from None
    except Exception as exc:  # the project's env.py and models may raise anything
        raise CheckConfigError(_env_failure(exc)) from exc
    finally:
        config.attributes.pop(COLLECT_METADATA, None)
    metadata = config.attributes.pop(COLLECTED_METADATA, None)
    if metadata is None:
        raise CheckConfigError(
            f"{script.env_py_location} does not call alembic_extensions.run_migrations(context, "
            "Base.metadata), so pgkeel cannot find the models. Fix: make that call the body of "
            "env.py."
        )
    return metadata  # type: ignore[no-any-return]


def _project_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the project's own code (not an installed package's), else the last.

    A model that breaks a naming rule raises inside pgkeel; the line to correct is the model's.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    libraries = _library_directories()
    for frame in reversed(frames):
        if not frame.filename.startswith(("<", *libraries)):
            return frame
    return frames[-1] if frames else None


def _library_directories() -> tuple[str, ...]:
    """Where installed code lives: the standard library, site-packages, pgkeel's own packages."""
    import sysconfig  # noqa: PLC0415  # only when env.py failed

    import pgkeel  # noqa: PLC0415

    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {str(Path(pgkeel.__file__).parent), str(Path(__file__).parent)}
    return tuple(f"{path}/" for path in paths if path)


def _env_failure(exc: BaseException) -> str:
    """One paragraph for an ``env.py`` (or a model it imports) that raised while loading.

    pgkeel's own errors (a name over 63 bytes) carry their fix: it is given as it is.
    """
    frame = _project_frame(exc)
    where = f" at {frame.filename}:{frame.lineno}" if frame else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    head = f"the migration environment (env.py) failed to load{where}: {type(exc).__name__}"
    if isinstance(exc, PgkeelError) and message:
        return (
            f"{head}: {message.rstrip('.')}. `pgkeel check --traceback` shows the full traceback."
        )
    return (
        f"{head}{': ' + message.rstrip('.') if message else ''}. Fix: correct that file (an "
        "import or a model definition); `pgkeel check --traceback` shows the full traceback."
    )


def check_rules(config: Config) -> StepResult:
    """The model rules on every table ``env.py`` migrates, as ``[tool.pgkeel.rules]`` sets them."""
    metadata = target_metadata(config)
    settings = config.attributes.pop(COLLECTED_SETTINGS, None) or project_settings(config)
    try:
        errors, warnings = split_by_level(
            check_tables(migrated_tables(metadata), settings), settings
        )
    except SettingsError as exc:
        return StepResult("rules", str(exc))
    warned = format_violations(warnings, heading="warnings") if warnings else None
    if not errors:
        return StepResult("rules", None, warnings=warned)
    return StepResult("rules", format_violations(errors, heading="the models"), warnings=warned)


INVALID_INDEXES = sql_text("""
SELECT n.nspname, t.relname, i.relname
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE NOT (x.indisvalid AND x.indisready)
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1, 2, 3
""")


def invalid_indexes(config: Config) -> list[str]:
    """One finding per INVALID index of the migrated database (what a failed build leaves)."""
    rows: list[tuple[str, str, str]] = []

    def collect(_revision: object, context: MigrationContext) -> list[object]:
        if context.connection is not None:
            rows.extend(tuple(row) for row in context.connection.execute(INVALID_INDEXES))
        return []

    script = ScriptDirectory.from_config(config)
    with EnvironmentContext(config, script, fn=collect, dont_mutate=True):
        script.run_env()
    return [
        f"index {index} on {schema}.{table} is INVALID: a CREATE INDEX CONCURRENTLY (or REINDEX) "
        "failed or is still running. PostgreSQL updates it on every write but never uses it, "
        "and a unique one is no sure rule. Fix: `alembic revision --autogenerate` writes its "
        "rebuild (concurrently, the old one dropped once the new one is valid), then "
        "`alembic upgrade head`; or DROP INDEX CONCURRENTLY it if the models do not have it."
        for schema, table, index in rows
    ]


def check_drift(config: Config) -> StepResult:
    """``alembic check``: no difference between the models and the migrated database.

    INVALID indexes are reported first: each is also drift (autogenerate rebuilds it).
    """
    config.attributes[DRIFT_CHECK] = True
    stdout, config.stdout = config.stdout, io.StringIO()  # "No new upgrade operations detected."
    invalid: list[str] = []
    try:
        invalid = invalid_indexes(config)
        command.check(config)
    except CommandError as exc:
        message = str(exc)
        if message.startswith(NO_DATABASE):  # the step needs one; the others do not
            message += " Or leave this step out: pgkeel check --skip drift."
        return StepResult("drift", "\n".join([*invalid, message]))
    except SQLAlchemyError as exc:
        return StepResult("drift", f"the database could not be checked: {exc}")
    finally:
        config.attributes.pop(DRIFT_CHECK, None)
        config.stdout = stdout
    return StepResult("drift", "\n".join(invalid) or None)


def offline_sql(config: Config, target: str) -> str:
    """``alembic upgrade target --sql``: the SQL a DBA would run, captured."""
    buffer = io.StringIO()
    offline = Config(
        file_=config.config_file_name,
        toml_file=config.toml_file_name,
        ini_section=config.config_ini_section,
        output_buffer=buffer,
        attributes=dict(config.attributes),
    )
    command.upgrade(offline, target, sql=True)
    return buffer.getvalue()


def migration_sql(config: Config) -> dict[str, str]:
    """The offline SQL of each migration on its own, by file name (``0002_add_orders.sql``).

    One file per migration, as squawk expects: whether a migration runs in a transaction (and
    so which statements must be re-runnable) is decided migration by migration.
    """
    script = ScriptDirectory.from_config(config)
    scripts: dict[str, str] = {}
    for revision in reversed(list(script.walk_revisions(base="base", head="heads"))):
        down = revision.down_revision
        start = down if isinstance(down, str) or down is None else down[0]
        target = revision.revision if start is None else f"{start}:{revision.revision}"
        name = Path(revision.path).stem if revision.path else revision.revision
        scripts[f"{name}.sql"] = offline_sql(config, target)
    return scripts


def find_squawk() -> str | None:
    """The squawk executable: on PATH, or next to this Python (a virtualenv's bin/)."""
    beside = Path(sys.executable).parent / "squawk"
    return shutil.which("squawk") or (str(beside) if beside.is_file() else None)


def squawk(scripts: dict[str, str], excluded: Sequence[str]) -> tuple[int, str]:
    """Run squawk on each script (written to a scratch directory); its status and report."""
    executable = find_squawk()
    if executable is None:
        raise CheckConfigError("squawk is not installed. Fix: pip install squawk-cli.")
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for name, text in scripts.items():
            path = Path(directory) / name
            path.write_text(text)
            paths.append(str(path))
        arguments = [executable, "--reporter", "gcc", *(f"--exclude={rule}" for rule in excluded)]
        result = subprocess.run(  # noqa: PLW1510  # the exit status is the result
            [*arguments, *paths], capture_output=True, text=True, env=os.environ.copy()
        )
        report = (result.stdout + result.stderr).replace(f"{directory}/", "").strip()
    return result.returncode, report


def check_squawk(config: Config, excluded: Sequence[str] = SQUAWK_EXCLUDED) -> StepResult:
    """Lint each migration's offline SQL with squawk (skipped when it is not installed)."""
    if find_squawk() is None:
        return StepResult(
            "squawk", None, "skipped: squawk is not installed (pip install squawk-cli)"
        )
    scripts = migration_sql(config)
    if not scripts:
        return StepResult("squawk", None, "no migrations yet")
    status, report = squawk(scripts, excluded)
    if status == 0:
        return StepResult("squawk", None)
    return StepResult("squawk", report or f"squawk exited with status {status}")


def check_runtime_role(url: str) -> StepResult:
    """The role at ``url`` is bound by row-level security on every table with a tenant_id.

    Each finding names what is wrong (superuser, BYPASSRLS, CREATEROLE, membership in such a
    role, owner of a tenant table, a tenant table, partition or child without forced row-level
    security, a policy other than pgkeel's, TRUNCATE/TRIGGER/REFERENCES, a view or SECURITY
    DEFINER function that reads tenant tables with a bypassing owner's rights) and the fix.
    """
    engine = create_engine(parse_database_url(url, source="--runtime-url"))
    try:
        problems = runtime_role_problems(engine)
    except SQLAlchemyError as exc:
        return StepResult(RUNTIME_ROLE_STEP, f"the runtime role could not be checked: {exc}")
    finally:
        engine.dispose()
    if not problems:
        return StepResult(RUNTIME_ROLE_STEP, None)
    lines = [f"[{problem.rule}] {problem.message}" for problem in problems]
    return StepResult(RUNTIME_ROLE_STEP, "\n".join(lines))


def run_check(
    config: Config,
    *,
    skip: Sequence[str] = (),
    squawk_excluded: Sequence[str] = SQUAWK_EXCLUDED,
    runtime_url: str | None = None,
) -> list[StepResult]:
    """Run the steps not in ``skip``, in order, and return what each found.

    With ``runtime_url``, the runtime-role check runs last.
    """
    steps: dict[str, Callable[[], StepResult]] = {
        "rules": lambda: check_rules(config),
        "drift": lambda: check_drift(config),
        "squawk": lambda: check_squawk(config, squawk_excluded),
    }
    results = [steps[name]() for name in STEPS if name not in skip]
    if runtime_url is not None:
        results.append(check_runtime_role(runtime_url))
    return results


def report(results: Sequence[StepResult]) -> str:
    """The check's output: one line per step, each finding indented under it."""
    lines = []
    for result in results:
        status = "ok" if result.passed else "FAILED"
        note = f" ({result.note})" if result.note else ""
        lines.append(f"pgkeel check: {result.step}: {status}{note}")
        for text in (result.findings, result.warnings):
            if text is not None:
                lines.extend(f"    {line}" if line else "" for line in text.splitlines())
    return "\n".join(lines)
