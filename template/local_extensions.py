"""Jinja filters of the template, loaded by cookiecutter through ``_extensions``."""

from __future__ import annotations

from cookiecutter.utils import simple_filter

_PRINTABLE_ASCII = range(0x20, 0x7F)


def _escaped(character: str) -> str:
    """``character`` as it stands in a Python string literal of ASCII characters."""
    code = ord(character)
    if code in _PRINTABLE_ASCII and character not in '"\\':
        return character
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


@simple_filter
def python_string(value: str) -> str:
    """``value`` as a double-quoted Python string literal that ruff accepts whatever it holds.

    Every character outside printable ASCII is an escape, so a name with an en dash or another
    character that looks like an ASCII one is no ambiguous-character finding (RUF001).
    """
    return '"' + "".join(_escaped(character) for character in value) + '"'
