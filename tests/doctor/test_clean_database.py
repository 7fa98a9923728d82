"""A database built by pgkeel's models reports nothing."""

from __future__ import annotations

from pgkeel.doctor import Thresholds, diagnose
from tests.databases import create_tables
from tests.isolation.models import Base


def test_a_create_all_of_pgkeel_models_has_no_finding(doctor_url: str) -> None:
    create_tables(doctor_url, Base.metadata)
    report = diagnose(doctor_url)
    assert [(f.check, f.object) for f in report.findings] == []
    assert [n for n in report.notes if n.status == "not-run"] == []


def test_its_unused_indexes_are_only_those_a_fresh_database_has_not_used_yet(
    doctor_url: str,
) -> None:
    create_tables(doctor_url, Base.metadata)
    report = diagnose(doctor_url, thresholds=Thresholds(unused_index_min_stats_days=0))
    assert [(f.check, f.object) for f in report.findings] == [
        ("unused-index", "public.idx_plans_is_deleted")
    ]
