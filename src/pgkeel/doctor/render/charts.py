"""Horizontal bar charts as inline SVG: no script, no font file, no external asset."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

_WIDTH = 860
_LABEL_WIDTH = 330
_VALUE_WIDTH = 110
_ROW = 26
_BAR = 18


def bar_chart(title: str, rows: Sequence[tuple[str, float, str]], colour: str) -> str:
    """An SVG chart of ``rows`` (label, value, value as text), longest bar = largest value."""
    if not rows:
        return f'<p class="empty">{escape(title)}: nothing to show.</p>'
    largest = max(value for _, value, _ in rows) or 1
    span = _WIDTH - _LABEL_WIDTH - _VALUE_WIDTH
    height = _ROW * len(rows) + 8
    bars = [
        _bar(index, label, value / largest * span, shown, colour)
        for index, (label, value, shown) in enumerate(rows)
    ]
    return (
        f"<figure><figcaption>{escape(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}">'
        + "".join(bars)
        + "</svg></figure>"
    )


def _bar(index: int, label: str, length: float, shown: str, colour: str) -> str:
    top = index * _ROW + 4
    middle = top + _BAR / 2 + 4
    short = label if len(label) <= 44 else label[:43] + "…"
    return (
        f"<g><title>{escape(label)}: {escape(shown)}</title>"
        f'<text x="{_LABEL_WIDTH - 8}" y="{middle:.1f}" text-anchor="end">{escape(short)}</text>'
        f'<rect x="{_LABEL_WIDTH}" y="{top}" width="{max(length, 1):.1f}" height="{_BAR}" '
        f'rx="3" fill="{colour}"/>'
        f'<text x="{_LABEL_WIDTH + max(length, 1) + 6:.1f}" y="{middle:.1f}">{escape(shown)}</text>'
        "</g>"
    )
