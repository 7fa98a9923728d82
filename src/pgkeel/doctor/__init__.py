"""pgkeel doctor: pgkeel's standards and PostgreSQL's health, checked on a live database.

``diagnose(url)`` runs every check in one READ ONLY transaction, under a statement and a lock
timeout, and returns a ``Report``: findings (check id, severity, object, evidence, fix), notes
on checks that did not apply, the largest relations and the top queries. ``render`` turns a
report into text, JSON, Prometheus exposition text or one self-contained HTML page. The
command ``pgkeel doctor`` does both (see docs/doctor.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pgkeel.doctor.model import Finding, Note, QueryStat, RelationSize, Report, Severity
from pgkeel.doctor.render import FORMATS, JSON_SCHEMA_VERSION, render
from pgkeel.doctor.thresholds import DoctorSettingsError, Thresholds, read_thresholds

if TYPE_CHECKING:
    from pgkeel.doctor.run import CHECKS, DoctorError, diagnose

# The checks (and SQLAlchemy with them) load on first use (PEP 562): `pgkeel --help` stays fast.
_LAZY = frozenset({"CHECKS", "DoctorError", "diagnose"})

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


def __getattr__(name: str) -> Any:  # noqa: ANN401  # whichever public object is asked for
    """Import ``pgkeel.doctor.run`` for one of its public names."""
    if name not in _LAZY:
        raise AttributeError(f"module 'pgkeel.doctor' has no attribute {name!r}")
    value = getattr(importlib.import_module("pgkeel.doctor.run"), name)
    globals()[name] = value
    return value
