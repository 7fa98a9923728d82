"""The report as JSON for monitoring systems, in a versioned, documented schema."""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pgkeel.doctor.model import SEVERITIES
from pgkeel.doctor.render.common import section_of

if TYPE_CHECKING:
    from pgkeel.doctor.model import Report

JSON_SCHEMA_VERSION = 1
"""Raised when a field is removed or changes meaning; new fields may appear in any version."""
SCHEMA_ID = "pgkeel.doctor.report"

_NUMBER = {"type": "number"}
_COUNT = {"type": "integer", "minimum": 0}
_TEXT = {"type": "string"}
_SCALAR = {"type": ["string", "number", "boolean", "null"]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


_QUERY = _object(
    {
        "query": _TEXT,
        "calls": _COUNT,
        "total_ms": _NUMBER,
        "mean_ms": _NUMBER,
        "rows": _COUNT,
        "share": _NUMBER,
    }
)
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pgkeel doctor report",
    **_object(
        {
            "schema": {"const": SCHEMA_ID},
            "schema_version": {"const": JSON_SCHEMA_VERSION},
            "database": _TEXT,
            "server_version": _TEXT,
            "generated_at": _TEXT,
            "duration_s": _NUMBER,
            "summary": _object(dict.fromkeys(SEVERITIES, _COUNT)),
            "findings": _list_of(
                _object(
                    {
                        "check": _TEXT,
                        "severity": {"enum": list(SEVERITIES)},
                        "section": {"enum": ["schema", "health", "queries"]},
                        "object": _TEXT,
                        "message": _TEXT,
                        "evidence": {"type": "object", "additionalProperties": _SCALAR},
                        "fix": _TEXT,
                    }
                )
            ),
            "notes": _list_of(
                _object(
                    {
                        "check": _TEXT,
                        "status": {"enum": ["not-applicable", "not-run"]},
                        "reason": _TEXT,
                    }
                )
            ),
            "sizes": _object(
                {
                    "database_bytes": _COUNT,
                    "tables": _list_of(_object({"name": _TEXT, "bytes": _COUNT})),
                    "indexes": _list_of(_object({"name": _TEXT, "table": _TEXT, "bytes": _COUNT})),
                }
            ),
            "queries": _object({"by_total": _list_of(_QUERY), "by_mean": _list_of(_QUERY)}),
            "thresholds": {"type": "object", "additionalProperties": _NUMBER},
        }
    ),
}
"""The JSON Schema (draft 2020-12) every ``render_json`` output validates against."""


def report_as_dict(report: Report) -> dict[str, Any]:
    """The report as the plain data ``JSON_SCHEMA`` describes."""
    return {
        "schema": SCHEMA_ID,
        "schema_version": JSON_SCHEMA_VERSION,
        "database": report.database,
        "server_version": report.server_version,
        "generated_at": report.generated_at,
        "duration_s": report.duration_s,
        "summary": {s: sum(f.severity == s for f in report.findings) for s in SEVERITIES},
        "findings": [
            {**asdict(finding), "section": section_of(finding.check)} for finding in report.findings
        ],
        "notes": [asdict(note) for note in report.notes],
        "sizes": {
            "database_bytes": report.database_bytes,
            "tables": [{"name": t.name, "bytes": t.bytes} for t in report.largest_tables],
            "indexes": [asdict(index) for index in report.largest_indexes],
        },
        "queries": {
            "by_total": [asdict(q) for q in report.top_by_total],
            "by_mean": [asdict(q) for q in report.top_by_mean],
        },
        "thresholds": report.thresholds,
    }


def _scalar(value: object) -> object:
    """A value ``json`` cannot write, as one it can: a whole Decimal as an int, others as text."""
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def render_json(report: Report) -> str:
    """The report as indented JSON (see ``JSON_SCHEMA``)."""
    return json.dumps(report_as_dict(report), indent=2, default=_scalar) + "\n"
