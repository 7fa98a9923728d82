"""Fixtures for the model tests: isolated declarative bases, rolled-back DDL, statement logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import DeclarativeBase

from pgkeel.base import PgkeelDeclarative

Recorder = Callable[[], AbstractContextManager[list[str]]]


def isolated_base() -> type[DeclarativeBase]:
    """A fresh declarative base with pgkeel's behaviour and its own MetaData and registry."""

    class IsolatedBase(PgkeelDeclarative, DeclarativeBase):
        pass

    return IsolatedBase


@pytest.fixture
def base() -> type[DeclarativeBase]:
    """An isolated base for one test: its models never reach ``pgkeel.Base``."""
    return isolated_base()


@pytest.fixture
def connection(db_engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction rolled back after the test (DDL included)."""
    with db_engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()


@pytest.fixture
def record(db_engine: Engine) -> Recorder:
    """``with record() as sent:`` collects every statement the engine sends in the block."""

    @contextmanager
    def recording() -> Iterator[list[str]]:
        sent: list[str] = []

        def log(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            sent.append(statement)

        event.listen(db_engine, "before_cursor_execute", log)
        try:
            yield sent
        finally:
            event.remove(db_engine, "before_cursor_execute", log)

    return recording
