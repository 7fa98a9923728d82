"""Project settings in ``[tool.pgkeel]``: validated, found from the project, read by every path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.util import CommandError
from alembic_project import Project
from sqlalchemy import Column, DateTime, Integer, Interval, MetaData, Table, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alembic_extensions.errors import ModelRulesError
from alembic_extensions.rules import check_tables
from pgkeel import cli, rules
from pgkeel.base import PgkeelDeclarative, new_metadata
from pgkeel.errors import SettingsError, UnknownRuleError
from pgkeel.mixins import BaseModel
from pgkeel.naming import allow
from pgkeel.settings import DEFAULT_SETTINGS, Settings, find_pyproject, load_settings
from pgkeel.types import TYPE_ANNOTATION_MAP

MakeProject = Callable[[str], Project]

ADOPTION_SETTINGS = """
[project]
name = "legacy-service"

[tool.pgkeel.rules]
plural-table-name = "warn"
uuid-primary-key = "off"

[tool.pgkeel.timestamps]
updated = "modified_at"

[tool.pgkeel.doctor]
bloat_ratio = 0.4
anything = { the = "doctor validates it" }
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text(text)
    return path


def settings_of(tmp_path: Path, text: str) -> Settings:
    return load_settings(write(tmp_path, text))


def test_a_file_read_again_gives_its_new_content_at_once(tmp_path: Path) -> None:
    """Settings are kept per file content: a change of the same size, made at once, is seen."""
    path = write(tmp_path, '[tool.pgkeel.rules]\njsonb = "warn"\n')
    first = load_settings(path)
    assert load_settings(path) is first  # unchanged: the settings already read
    path.write_text('[tool.pgkeel.rules]\njsonb = "off" \n')  # same size, same instant
    assert first.level("jsonb") == "warn"
    assert load_settings(path).level("jsonb") == "off"
    path.write_text("[tool.pgkeel.rules\n")
    with pytest.raises(SettingsError, match="is not valid TOML"):
        load_settings(path)


def test_no_pyproject_or_no_table_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings(start=tmp_path) == DEFAULT_SETTINGS
    assert load_settings(write(tmp_path, "[project]\nname = 'x'\n")).rules == {}
    assert DEFAULT_SETTINGS.level("jsonb") == "on"


def test_settings_are_read_and_found_from_a_subdirectory(tmp_path: Path) -> None:
    path = write(tmp_path, ADOPTION_SETTINGS)
    nested = tmp_path / "app" / "models"
    nested.mkdir(parents=True)
    assert find_pyproject(nested) == path
    settings = load_settings(start=nested)
    assert settings.path == path
    assert settings.level("plural-table-name") == "warn"
    assert not settings.checks("uuid-primary-key")
    assert settings.checks("jsonb")
    assert (settings.timestamps.created, settings.timestamps.updated) == (
        "created_at",
        "modified_at",
    )
    assert settings.doctor == {"bloat_ratio": 0.4, "anything": {"the": "doctor validates it"}}
    assert load_settings(tmp_path) == settings  # a directory holding the file


def test_the_current_directory_is_the_default_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, ADOPTION_SETTINGS)
    monkeypatch.chdir(tmp_path)
    assert load_settings().level("uuid-primary-key") == "off"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[tool.pgkeel.rules]\njsnob = 'off'\n",
            (
                "Unknown rule id 'jsnob' in [tool.pgkeel.rules] in {path}: a misspelled id "
                "would silently leave the rule on (or off). Did you mean 'jsonb'?"
            ),
        ),
        (
            "[tool.pgkeel.rules]\nfk-index = 'off'\n",
            "Rule 'fk-index' in [tool.pgkeel.rules] in {path} cannot be set for the whole project",
        ),
        (
            "[tool.pgkeel.rules]\njsonb = 'disabled'\n",
            (
                "Rule 'jsonb' in [tool.pgkeel.rules] in {path} is set to 'disabled'. Fix: set it "
                "to one of 'on', 'warn', 'off'"
            ),
        ),
        ("[tool.pgkeel]\nrule = {}\n", "Unknown key 'rule' in [tool.pgkeel] in {path}."),
        ("[tool.pgkeel]\nrules = 'off'\n", "[tool.pgkeel.rules] in {path} must be a table"),
        ("[tool.pgkeel]\ndoctor = 3\n", "[tool.pgkeel.doctor] in {path} must be a table"),
        (
            "[tool.pgkeel.timestamps]\nmodified = 'modified_at'\n",
            "Unknown key 'modified' in [tool.pgkeel.timestamps] in {path}.",
        ),
        (
            "[tool.pgkeel.timestamps]\nupdated = 'Modified At'\n",
            "updated = 'Modified At' in [tool.pgkeel.timestamps] in {path} is not a column name.",
        ),
        ("[tool.pgkeel\n", "{path} is not valid TOML"),
    ],
)
def test_bad_settings_are_errors_naming_the_place_and_the_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert message.startswith(expected.format(path=path)), message
    assert "Fix:" in message
    assert "\n" not in message


def test_unknown_rule_errors_list_the_valid_ids(tmp_path: Path) -> None:
    with pytest.raises(UnknownRuleError) as raised:
        settings_of(tmp_path, "[tool.pgkeel.rules]\nplural-tables = 'warn'\n")
    settable = [rule.id for rule in rules.RULES.values() if rule.settable]
    assert f"Fix: use one of {', '.join(settable)}." in str(raised.value)


def test_an_explicit_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"No pgkeel settings file at .*missing\.toml"):
        load_settings(tmp_path / "missing.toml")


def test_allow_refuses_an_unknown_rule_id() -> None:
    with pytest.raises(UnknownRuleError, match=r"'jsnob' in pgkeel.naming.allow\(\).*'jsonb'"):
        allow("jsnob")
    assert allow("jsonb", "fk-index")  # every known id, settable or not


def test_a_hand_written_opt_out_with_an_unknown_id_is_refused() -> None:
    typo = Column("data", Text(), info={"pgkeel_allow": {"jsnob"}})
    table = Table("widgets", MetaData(), Column("id", Integer, primary_key=True), typo)
    with pytest.raises(UnknownRuleError, match=r"'jsnob' in pgkeel_allow of column widgets\.data"):
        check_tables([table])
    index_typo = Table(
        "gadgets",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("code", Text()),
        UniqueConstraint("code", info={"pgkeel_allow": "tenant-leading-colum"}),
    )
    with pytest.raises(UnknownRuleError, match="unique constraint on \\(code\\) of table gadgets"):
        check_tables([index_typo])


def test_a_model_with_an_unknown_opt_out_is_refused_at_class_definition() -> None:
    class Base(PgkeelDeclarative, DeclarativeBase):
        metadata = new_metadata()
        type_annotation_map = TYPE_ANNOTATION_MAP

    with pytest.raises(UnknownRuleError, match=r"column gizmos\.made_at"):

        class Gizmo(BaseModel, Base):
            made_at: Mapped[object] = mapped_column(
                DateTime(), info={"pgkeel_allow": {"timestamptx"}}
            )

    assert "gizmos" not in Base.metadata.tables


def test_rule_levels_and_timestamp_names_change_what_check_tables_reports(tmp_path: Path) -> None:
    table = Table(
        "workspace",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("created_at", DateTime(timezone=True)),
        Column("modified_at", DateTime(timezone=True)),
        Column("every", Interval()),
    )
    by_default = sorted(violation.rule for violation in check_tables([table]))
    assert by_default == ["plural-table-name", "timestamps", "uuid-primary-key"]
    settings = settings_of(tmp_path, ADOPTION_SETTINGS)
    assert [violation.rule for violation in check_tables([table], settings)] == [
        "plural-table-name"
    ]


def test_adopting_an_existing_project_with_settings_only(
    make_project: MakeProject, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project("adoption")
    with pytest.raises(ModelRulesError) as refused:
        project.revision("existing schema")
    found = sorted({violation.rule for violation in refused.value.violations})
    assert found == ["plural-table-name", "timestamps", "uuid-primary-key"]
    assert "interval" not in str(refused.value).lower()
    assert "identifier-length" not in str(refused.value)
    write(project.directory, ADOPTION_SETTINGS)
    with caplog.at_level(logging.WARNING, logger="alembic_extensions"):
        path = project.revision("existing schema")
    warned = caplog.text
    assert "[plural-table-name] workspace: table name is not plural snake_case." in warned
    assert "uuid-primary-key" not in warned
    assert "timestamps" not in warned
    source = path.read_text()
    assert "op.f('ix_scheduled_maintenance_window_assignments_every_workspace_identifier" in source
    project.upgrade()
    project.check()
    indexes = project.query(
        "SELECT indexname FROM pg_indexes WHERE tablename = "
        "'scheduled_maintenance_window_assignments' AND indexname LIKE 'ix_%'"
    )
    assert indexes
    assert all(len(name.encode()) <= 63 for name in indexes)


def test_pgkeel_check_reads_the_same_settings(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("adoption")
    monkeypatch.chdir(project.directory)
    assert cli.main(["check", "--skip", "drift", "--skip", "squawk"]) == 1
    assert "[uuid-primary-key]" in capsys.readouterr().out
    write(project.directory, ADOPTION_SETTINGS)
    assert cli.main(["check", "--skip", "drift", "--skip", "squawk"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pgkeel check: rules: ok\n    warnings: 1 problem.")
    assert "[plural-table-name] workspace" in out
    write(project.directory, "[tool.pgkeel.rules]\njsnob = 'off'\n")
    assert cli.main(["check", "--skip", "drift", "--skip", "squawk"]) != 0
    assert "Unknown rule id 'jsnob' in [tool.pgkeel.rules]" in capsys.readouterr().err


def test_run_migrations_settings_are_checked_by_name(make_project: MakeProject) -> None:
    project = make_project("adoption")
    with pytest.raises(CommandError) as raised:
        command.upgrade(project.config(settings={"lock_timout": "1s"}), "head")
    message = str(raised.value)
    assert message.startswith(
        "run_migrations() got the keyword 'lock_timout', and it is not a setting. Did you mean "
        "'lock_timeout'?"
    )
    with pytest.raises(CommandError, match="'autogenerate_plugins', and pgkeel sets it itself"):
        command.upgrade(project.config(settings={"autogenerate_plugins": []}), "head")


def test_an_alembic_configure_keyword_still_passes_through(make_project: MakeProject) -> None:
    project = make_project("tenancy")
    project.revision("create invoices")
    command.upgrade(project.config(settings={"version_table": "schema_versions"}), "head")
    assert project.query("SELECT version_num FROM schema_versions") == ["0001"]


def test_settings_given_in_env_py_win_over_the_file(make_project: MakeProject) -> None:
    project = make_project("adoption")
    loose = Settings(
        rules={"plural-table-name": "off", "uuid-primary-key": "off", "timestamps": "off"}
    )
    command.revision(
        project.config(settings={"settings": loose}), message="existing", autogenerate=True
    )
    assert len(project.versions()) == 1
