"""Jinja filters of the template, loaded by cookiecutter through ``_extensions``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from cookiecutter.exceptions import FailedHookException
from cookiecutter.utils import simple_filter
from pgkeel_template_answers import problems

TEMPLATE_DIR = Path(__file__).resolve().parent
"""This template's directory (cookiecutter imports this module from it, by the path as typed)."""

_PRINTABLE_ASCII = range(0x20, 0x7F)


class _FailedHookWithoutTraceback(logging.Filter):
    """Keep cookiecutter's line about a failed hook, drop the traceback it logs under it.

    The post-generation hook prints what failed and the fix (an ``error:`` line) and exits
    with status 1; cookiecutter then removes the service's directory and logs the stop with
    ``logger.exception``, a traceback of its own code that says nothing more.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Let the record through, without the traceback of a ``FailedHookException``."""
        if record.exc_info and isinstance(record.exc_info[1], FailedHookException):
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("cookiecutter.hooks").addFilter(_FailedHookWithoutTraceback())


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


@simple_filter
def checked_answers(answers: dict[str, Any]) -> str:
    """``"yes"`` when the answers make a working service; else each problem on stderr, and stop.

    Rendered by the last entry of cookiecutter.json, after every answer and before cookiecutter
    makes any directory: nothing is left to remove, whatever the slug holds. The stop is
    cookiecutter's own ``FailedHookException``: its command line prints the message in one line
    and exits with status 1, its Python API raises it.
    """
    found = problems(answers, TEMPLATE_DIR)
    if not found:
        return "yes"
    for problem in found:
        sys.stderr.write(f"error: {problem}\n")
    noun = "answer" if len(found) == 1 else "answers"
    raise FailedHookException(f"Nothing was written: {len(found)} {noun} to change (above).")
