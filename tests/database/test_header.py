"""The report header names the test server's version and origin, and a version that differs."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import URL

from pgkeel.database import conninfo


def server_major(url: URL) -> int:
    with psycopg.connect(conninfo(url)) as connection:
        row = connection.execute("show server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def run_inner(pytester: pytest.Pytester, url: URL, *settings: str) -> pytest.RunResult:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    target = url.render_as_string(hide_password=False)
    pytester.makeini("\n".join(["[pytest]", f"pgkeel_url = {target}", *settings]) + "\n")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_the_header_names_the_version_and_where_it_comes_from(
    pytester: pytest.Pytester, pgkeel_server_url: URL
) -> None:
    major = server_major(pgkeel_server_url)
    result = run_inner(pytester, pgkeel_server_url, f"pgkeel_postgres_version = {major}")
    result.stdout.fnmatch_lines([f"pgkeel: PostgreSQL {major}.* (DATABASE_URL)"])
    result.stdout.no_fnmatch_line("*WARNING*")
    assert result.ret == 0


def test_another_major_is_a_warning_in_the_header(
    pytester: pytest.Pytester, pgkeel_server_url: URL
) -> None:
    wanted = server_major(pgkeel_server_url) + 1
    result = run_inner(pytester, pgkeel_server_url, f"pgkeel_postgres_version = {wanted}")
    result.stdout.fnmatch_lines([f"pgkeel: PostgreSQL * WARNING: not PostgreSQL {wanted}, *"])
    assert result.ret == 0


def test_another_major_can_be_made_an_error(
    pytester: pytest.Pytester, pgkeel_server_url: URL
) -> None:
    wanted = server_major(pgkeel_server_url) + 1
    result = run_inner(
        pytester,
        pgkeel_server_url,
        f"pgkeel_postgres_version = {wanted}",
        "pgkeel_version_mismatch = error",
    )
    assert result.ret != 0
    result.stderr.fnmatch_lines([f"*not PostgreSQL {wanted}, which pgkeel_postgres_version*"])
