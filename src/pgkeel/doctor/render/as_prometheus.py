"""The report as Prometheus exposition text, for node_exporter's textfile collector."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pgkeel.doctor.model import SEVERITIES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pgkeel.doctor.model import Report

_PREFIX = "pgkeel_doctor_"


def _label(value: str) -> str:
    """A label value escaped as the exposition format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    rendered = ",".join(f'{key}="{_label(text)}"' for key, text in labels.items())
    number = str(int(value)) if float(value).is_integer() else repr(float(value))
    return f"{_PREFIX}{name}{{{rendered}}} {number}"


def _family(name: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {_PREFIX}{name} {help_text}", f"# TYPE {_PREFIX}{name} gauge", *samples]


def _counts(report: Report, database: dict[str, str]) -> list[str]:
    from pgkeel.doctor.run import CHECKS  # noqa: PLC0415  # the registry imports the renderers

    found = {(f.check, f.severity): 0 for f in report.findings}
    for finding in report.findings:
        found[finding.check, finding.severity] += 1
    samples = [
        _sample(
            "findings",
            {**database, "check": check.id, "severity": check.severity},
            found.get((check.id, check.severity), 0),
        )
        for check in CHECKS
    ]
    return _family("findings", "Findings per check (0 when the check found nothing).", samples)


def render_prometheus(report: Report) -> str:
    """Gauges: findings per check, each finding, notes, sizes, and the run itself."""
    database = {"database": report.database}
    lines = _counts(report, database)
    lines += _family(
        "finding",
        "Findings on one object: their number while they last; the labels name the check and "
        "the object.",
        (
            _sample("finding", dict(labels), count)
            for labels, count in Counter(
                tuple(
                    {
                        **database,
                        "check": f.check,
                        "severity": f.severity,
                        "object": f.object,
                    }.items()
                )
                for f in report.findings
            ).items()
        ),
    )
    lines += _family(
        "severity_findings",
        "Findings per severity.",
        (
            _sample(
                "severity_findings",
                {**database, "severity": severity},
                sum(f.severity == severity for f in report.findings),
            )
            for severity in SEVERITIES
        ),
    )
    lines += _family(
        "check_not_run",
        "1 for a check that could not run (a timeout, a missing privilege).",
        (
            _sample("check_not_run", {**database, "check": check}, 1)
            for check in dict.fromkeys(n.check for n in report.notes if n.status == "not-run")
        ),
    )
    lines += _family(
        "database_size_bytes",
        "Size of the database.",
        [_sample("database_size_bytes", database, report.database_bytes)],
    )
    lines += _family(
        "table_size_bytes",
        "Size of the largest tables, with their indexes and TOAST.",
        (
            _sample("table_size_bytes", {**database, "table": t.name}, t.bytes)
            for t in report.largest_tables
        ),
    )
    lines += _family(
        "index_size_bytes",
        "Size of the largest indexes.",
        (
            _sample(
                "index_size_bytes", {**database, "index": i.name, "table": i.table or ""}, i.bytes
            )
            for i in report.largest_indexes
        ),
    )
    lines += _family(
        "run_duration_seconds",
        "How long the doctor took.",
        [_sample("run_duration_seconds", database, report.duration_s)],
    )
    return "\n".join(lines) + "\n"
