"""pgkeel doctor: pgkeel's standards and PostgreSQL's health, checked on a live database.

``diagnose(url)`` runs every check in one READ ONLY transaction, under a statement and a lock
timeout, and returns a ``Report``: findings (check id, severity, object, evidence, fix), notes
on checks that did not apply, the largest relations and the top queries. ``render`` turns a
report into text, JSON, Prometheus exposition text or one self-contained HTML page. The
command ``pgkeel doctor`` does both (see docs/doctor.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgkeel._lazy import lazy_exports

# Imported here, not on first use: the subpackage ``render`` would otherwise shadow the function.
from pgkeel.doctor.render import FORMATS, render

if TYPE_CHECKING:
    from pgkeel.doctor.model import Finding, Note, QueryStat, RelationSize, Report, Severity
    from pgkeel.doctor.render import JSON_SCHEMA_VERSION
    from pgkeel.doctor.run import CHECKS, DoctorError, diagnose
    from pgkeel.doctor.thresholds import DoctorSettingsError, Thresholds, read_thresholds

# Every public name loads on first use (PEP 562): the checks import SQLAlchemy, the report's
# model and formats cost tens of ms, and `pgkeel --help` needs none of them.
_HOME = {
    **dict.fromkeys(
        ("Finding", "Note", "QueryStat", "RelationSize", "Report", "Severity"),
        "pgkeel.doctor.model",
    ),
    "JSON_SCHEMA_VERSION": "pgkeel.doctor.render",
    "CHECKS": "pgkeel.doctor.run",
    "DoctorError": "pgkeel.doctor.run",
    "diagnose": "pgkeel.doctor.run",
    "DoctorSettingsError": "pgkeel.doctor.thresholds",
    "Thresholds": "pgkeel.doctor.thresholds",
    "read_thresholds": "pgkeel.doctor.thresholds",
}

__all__ = [
    "CHECKS",
    "FORMATS",
    "JSON_SCHEMA_VERSION",
    "DoctorError",
    "DoctorSettingsError",
    "Finding",
    "Note",
    "QueryStat",
    "RelationSize",
    "Report",
    "Severity",
    "Thresholds",
    "diagnose",
    "read_thresholds",
    "render",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOME)
