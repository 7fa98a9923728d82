"""Counting the SQL a piece of work sends, for the benches that report statement counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def counting() -> Iterator[list[str]]:
    """Every statement any engine sends while the block runs."""
    sent: list[str] = []

    def count(*args: Any) -> None:  # noqa: ANN401
        sent.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", count)
