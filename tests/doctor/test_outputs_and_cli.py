"""The four formats and the command line, on a database with real problems."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pgkeel.cli import main
from pgkeel.doctor import JSON_SCHEMA_VERSION, Report, Thresholds, diagnose, render
from pgkeel.doctor.render.as_json import JSON_SCHEMA
from pgkeel.doctor.thresholds import DoctorSettingsError
from tests.doctor.conftest import as_role, execute, found, server_setting

if TYPE_CHECKING:
    from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ODD_TABLE = 'we"ird\\na<b>me'
QUOTED_TABLE = '"' + ODD_TABLE.replace('"', '""') + '"'


@pytest.fixture
def problems(doctor_url: str) -> str:
    execute(
        doctor_url,
        "CREATE TABLE customers (id bigint PRIMARY KEY, name text)",
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers, "
        "placed_at timestamp)",
        "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 500) g",
        f"CREATE TABLE {QUOTED_TABLE} (v int)",
    )
    if "pg_stat_statements" in server_setting(doctor_url, "shared_preload_libraries"):
        execute(doctor_url, "CREATE EXTENSION pg_stat_statements")
        execute(doctor_url, *["SELECT count(*) FROM customers WHERE name = 'c7'"] * 5)
    return doctor_url


@pytest.fixture
def report(problems: str) -> Report:
    return found(problems)


def test_json_follows_its_published_schema(report: Report) -> None:
    data = json.loads(render(report, "json"))
    jsonschema.Draft202012Validator(JSON_SCHEMA).validate(data)
    assert data["schema_version"] == JSON_SCHEMA_VERSION == 1
    assert data["summary"] == {"warning": 1, "error": 2}
    assert {f["check"] for f in data["findings"]} == {
        "fk-without-index",
        "naive-timestamp",
        "no-primary-key",
    }
    assert data["sizes"]["tables"][0]["name"] == "public.customers"


def test_prometheus_text_reads_back_with_the_reference_parser(report: Report) -> None:
    families = {f.name: f for f in text_string_to_metric_families(render(report, "prometheus"))}
    per_check = {s.labels["check"]: s.value for s in families["pgkeel_doctor_findings"].samples}
    assert per_check["fk-without-index"] == 1
    assert per_check["invalid-index"] == 0
    objects = {s.labels["object"] for s in families["pgkeel_doctor_finding"].samples}
    assert f"public.{QUOTED_TABLE}" in objects
    [size] = families["pgkeel_doctor_database_size_bytes"].samples
    assert size.value == report.database_bytes


def test_html_is_one_self_contained_page_with_escaped_names(report: Report) -> None:
    page = render(report, "html")
    assert re.search(r"\b(src|href)\s*=|url\(|@import|<script|<link", page) is None
    assert "<b>me" not in page
    assert "a&lt;b&gt;me" in page
    charts = 4 if report.top_by_total else 2  # tables, indexes (, queries by total and mean)
    assert page.count("<svg") == charts
    assert "fk-without-index" in page


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_html_page_renders_in_headless_chromium(report: Report, tmp_path: Path) -> None:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/system-deps.sh installs chromium")
        pytest.skip(f"{CHROMIUM} is not installed")
    page = tmp_path / "doctor.html"
    page.write_text(render(report, "html"))
    shot = tmp_path / "doctor.png"
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _png_size(shot) == (1200, 1600)
    assert shot.stat().st_size > 30_000  # a blank page compresses to a few kB


def test_the_command_exits_4_at_or_above_fail_on_and_writes_the_output(
    problems: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report.json"
    status = main(["doctor", "--url", problems, "--format", "json", "--output", str(out)])
    assert status == 4
    assert json.loads(out.read_text())["summary"]["error"] == 2
    execute(
        problems,
        "CREATE INDEX ON orders (customer_id)",
        f"ALTER TABLE {QUOTED_TABLE} ADD PRIMARY KEY (v)",
    )
    assert main(["doctor", "--url", problems, "--output", str(out)]) == 0
    assert main(["doctor", "--url", problems, "--output", str(out), "--fail-on", "warning"]) == 4
    assert "naive-timestamp" in out.read_text()


def test_thresholds_come_from_tool_pgkeel_doctor(
    problems: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    execute(problems, "CREATE INDEX idle ON customers (name)")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pgkeel.doctor]\nunused_index_min_stats_days = 0\n"
    )
    main(["doctor", "--url", problems, "--format", "json"])
    checks = [f["check"] for f in json.loads(capsys.readouterr().out)["findings"]]
    assert "unused-index" in checks
    (tmp_path / "pyproject.toml").write_text("[tool.pgkeel.doctor]\nunused_index_days = 0\n")
    assert main(["doctor", "--url", problems]) == 1
    error = capsys.readouterr().err
    assert "unknown doctor threshold 'unused_index_days'" in error
    assert "unused_index_min_stats_days" in error


def test_a_bad_threshold_value_is_refused_with_its_default() -> None:
    with pytest.raises(Exception, match=r"cache_hit_ratio_min = 'high' is not a number"):
        Thresholds.from_mapping({"cache_hit_ratio_min": "high"}, "pyproject.toml")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sequence_max_ratio", float("nan"), "is not a number >= 0"),
        ("long_query_s", float("inf"), "is not a number >= 0"),
        ("cache_hit_ratio_min", float("-inf"), "is not a number >= 0"),
        ("statement_timeout_ms", 0, "is not a whole number from 1 to 2147483647"),
        ("statement_timeout_ms", 99_999_999_999, "is not a whole number from 1 to 2147483647"),
        ("lock_timeout_ms", 0, "is not a whole number from 1 to 2147483647"),
    ],
)
def test_a_threshold_out_of_range_is_refused(key: str, value: object, expected: str) -> None:
    """NaN would switch a check off, infinity break the JSON report, a timeout of 0 remove it."""
    with pytest.raises(DoctorSettingsError, match=expected):
        Thresholds.from_mapping({key: value}, "pyproject.toml")


def test_no_database_and_an_unreachable_one_are_one_paragraph_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["doctor"]) == 1
    assert "neither --url nor DATABASE_URL is set" in capsys.readouterr().err
    assert main(["doctor", "--url", "postgresql+psycopg://nobody@127.0.0.1:1/x"]) == 1
    assert "cannot connect to postgresql+psycopg://nobody@127.0.0.1:1/x" in capsys.readouterr().err


def test_an_unreachable_database_is_named_with_the_cause_not_libpqs_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doctor", "--url", "postgresql+psycopg://nobody@127.0.0.1:1/x"]) == 1
    err = capsys.readouterr().err
    assert "port 1 failed: Connection refused. Fix: start the server" in err
    assert "Is the server running" not in err
    assert ".." not in err
    assert len(err.strip().splitlines()) == 1


def test_the_cache_hit_ratio_finding_is_written_as_json(
    problems: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sum() of the block counters is numeric: the evidence must still be JSON numbers."""
    monkeypatch.chdir(tmp_path)
    execute(problems, "SELECT count(*) FROM customers")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pgkeel.doctor]\ncache_hit_ratio_min = 1.0\ncache_min_blocks = 1\n"
    )
    out = tmp_path / "report.json"
    assert main(["doctor", "--url", problems, "--format", "json", "--output", str(out)]) == 4
    data = json.loads(out.read_text())
    jsonschema.Draft202012Validator(JSON_SCHEMA).validate(data)
    cache = next(f for f in data["findings"] if f["check"] == "cache-hit-ratio")
    assert isinstance(cache["evidence"]["hit"], int)
    assert isinstance(cache["evidence"]["read"], int)


def test_json_writes_any_evidence_value_it_is_given(report: Report) -> None:
    finding = replace(
        report.findings[0],
        evidence={"whole": Decimal(12), "part": Decimal("0.5"), "other": Decimal("NaN")},
    )
    data = json.loads(render(replace(report, findings=(finding,)), "json"))
    assert data["findings"][0]["evidence"] == {"whole": 12, "part": 0.5, "other": "NaN"}


def test_prometheus_has_one_sample_per_label_set_for_findings_on_one_object(
    doctor_url: str,
) -> None:
    role = f"twice_{doctor_url.rsplit('_', 1)[-1]}"
    execute(doctor_url, f"CREATE ROLE {role} LOGIN BYPASSRLS CREATEROLE")
    try:
        report = diagnose(doctor_url, runtime_url=as_role(doctor_url, role))
    finally:
        execute(doctor_url, f"DROP ROLE {role}")
    assert len([f for f in report.findings if f.check == "runtime-role"]) == 2
    families = {f.name: f for f in text_string_to_metric_families(render(report, "prometheus"))}
    for family in families.values():
        labels = [tuple(sorted(s.labels.items())) for s in family.samples]
        assert len(labels) == len(set(labels)), family.name
    [runtime] = [
        s for s in families["pgkeel_doctor_finding"].samples if s.labels["check"] == "runtime-role"
    ]
    assert runtime.value == 2


def test_the_output_file_is_replaced_whole_never_rewritten_in_place(
    problems: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "pgkeel.prom"
    out.write_text("old report\n")
    out.chmod(0o640)
    before = out.stat().st_ino
    main(["doctor", "--url", problems, "--format", "prometheus", "--output", str(out)])
    assert out.stat().st_ino != before  # a new file renamed over the old one
    assert out.stat().st_mode & 0o777 == 0o640
    assert out.read_text().startswith("# HELP pgkeel_doctor_findings")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pgkeel.prom"]


@pytest.mark.parametrize("where", ["missing role", "unreachable"])
def test_a_bad_runtime_url_is_a_one_paragraph_error(
    doctor_url: str, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = (
        as_role(doctor_url, "no_such_role_here")
        if where == "missing role"
        else "postgresql+psycopg://nobody@127.0.0.1:1/x"
    )
    assert main(["doctor", "--url", doctor_url, "--runtime-url", runtime]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the runtime URL" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
