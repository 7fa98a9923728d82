"""The doctor's thresholds: defaults, and the ``[tool.pgkeel.doctor]`` table that overrides them."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Final

from pgkeel.errors import SettingsError
from pgkeel.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

MIB = 1024 * 1024


class DoctorSettingsError(SettingsError):
    """``[tool.pgkeel.doctor]`` has an unknown key or a value of the wrong kind."""


@dataclass(frozen=True)
class Thresholds:
    """When a measurement becomes a finding. Ratios are 0..1, durations seconds, sizes bytes."""

    statement_timeout_ms: int = 5000
    """Each statement the doctor runs is cancelled after this long."""
    lock_timeout_ms: int = 1000
    """The doctor gives up on a lock after this long rather than queue behind DDL."""
    unused_index_min_stats_days: float = 7
    """Statistics must cover this many days before an index with no scans is called unused."""
    sequence_max_ratio: float = 0.75
    """A sequence or identity past this share of its type's range is a finding."""
    integer_key_max_ratio: float = 0.75
    """An integer key column whose largest value is past this share of its type's range."""
    cache_hit_ratio_min: float = 0.95
    """Table and index cache hit ratios below this are findings."""
    cache_min_blocks: int = 1000
    """The hit ratio is judged only after this many blocks were read or hit."""
    dead_tuple_ratio: float = 0.2
    """Dead rows above this share of a table's rows are a finding ..."""
    dead_tuple_min: int = 1000
    """... when there are at least this many."""
    bloat_ratio: float = 0.5
    """Estimated wasted space above this share of a table or index is a finding ..."""
    bloat_min_bytes: int = 10 * MIB
    """... when it wastes at least this many bytes."""
    maintenance_max_age_days: float = 7
    """A changed table last vacuumed or analyzed longer ago than this is a finding ..."""
    maintenance_min_rows: int = 1000
    """... when it holds at least this many rows (a table never vacuumed or analyzed too)."""
    xid_age_ratio: float = 1.0
    """A table whose transaction ID age passes this share of autovacuum_freeze_max_age."""
    long_query_s: float = 60
    long_transaction_s: float = 300
    idle_in_transaction_s: float = 60
    blocked_s: float = 5
    """A session waiting for a lock this long is a finding."""
    connections_ratio: float = 0.8
    """Connections above this share of max_connections (less the reserved ones)."""
    replica_lag_s: float = 5
    slow_query_ms: float = 20
    """A statement whose mean execution time is at least this ..."""
    slow_query_calls: int = 100
    """... and that ran at least this many times is a slow query."""
    seq_scan_min_rows: int = 10000
    """Tables of at least this many rows ..."""
    index_usage_min_ratio: float = 0.95
    """... that use an index for fewer than this share of their scans."""
    top: int = 10
    """How many queries and relations the report lists."""

    def as_dict(self) -> dict[str, int | float]:
        """Every threshold by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], where: str) -> Thresholds:
        """``values`` over the defaults; an unknown key or a bad value raises, naming it."""
        known = {f.name: f for f in fields(cls)}
        for key, value in values.items():
            if key not in known:
                raise DoctorSettingsError(
                    f"{where}: unknown doctor threshold {key!r}. Fix: remove it or use one of "
                    f"{', '.join(sorted(known))} (docs/doctor.md explains each)."
                )
            _check_number(key, value, int if known[key].type == "int" else float, where)
        return replace(cls(), **values)  # type: ignore[arg-type]


_TIMEOUT_RANGE: Final = (1, 2**31 - 1)
"""Milliseconds PostgreSQL takes for a timeout setting; 0 would turn the doctor's off."""
_TIMEOUTS: Final = frozenset({"statement_timeout_ms", "lock_timeout_ms"})


def _check_number(key: str, value: object, kind: type, where: str) -> None:
    accepted = (int,) if kind is int else (int, float)
    low, high = _TIMEOUT_RANGE if key in _TIMEOUTS else (0, math.inf)
    if not (
        not isinstance(value, bool)
        and isinstance(value, accepted)
        and math.isfinite(value)  # nan would turn a check off, inf break the JSON report
        and low <= value <= high
    ):
        wanted = "a whole number" if kind is int else "a number"
        bounds = f"from {low} to {high}" if key in _TIMEOUTS else f">= {low}"
        raise DoctorSettingsError(
            f"{where}: doctor threshold {key} = {value!r} is not {wanted} {bounds}. "
            f"Fix: write it as {key} = {getattr(Thresholds(), key)!r} (the default) or similar."
        )


def read_thresholds(pyproject: Path | None = None) -> Thresholds:
    """The thresholds of ``[tool.pgkeel.doctor]`` (defaults where it has none).

    The table is read from ``pyproject``, or from the nearest pyproject.toml from the current
    directory upward.

    ``pgkeel.settings`` reads ``[tool.pgkeel]`` and hands the ``doctor`` table over as written.
    """
    settings = load_settings(pyproject)
    where = f"{settings.path or 'pyproject.toml'} [tool.pgkeel.doctor]"
    return Thresholds.from_mapping(settings.doctor, where)
