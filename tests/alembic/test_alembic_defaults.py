"""Server defaults compared as PostgreSQL stores them: a changed default is always reported.

Each case compares a model's default with the default of a real table (made in a transaction
rolled back at the end), as the plugin does on ``alembic check``: the text first, then a boolean
literal as PostgreSQL's boolean input reads it, then PostgreSQL's own stored form (the probe).
The probe must leave nothing behind, even when PostgreSQL refuses the model's default. A ``%``
in a model's SQL (a default, a check, an index predicate) is compared as written, not as the
driver's escaped form.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alembic_extensions.checks import check_changed
from alembic_extensions.defaults import boolean_form, default_changed, server_default_form
from alembic_extensions.indexes import predicate_changed

TABLE = """
CREATE TABLE settings (
    flag boolean DEFAULT false,
    "on%" boolean DEFAULT true,
    amount integer DEFAULT (CASE WHEN true THEN 0 END),
    label text DEFAULT (CASE WHEN true THEN 'a:b' END),
    ratio text DEFAULT '100%',
    CONSTRAINT ck_settings_ratio CHECK (ratio LIKE '%!%')
);
CREATE INDEX ix_settings_amount ON settings (amount) WHERE ratio LIKE '1%'
"""
SPELLINGS = ["0", "1", "t", "F", "true", "FALSE", " yes ", "No", "on", "OFF", "y", "\tn\n"]


@pytest.fixture(scope="module")
def connection(postgres_url: str) -> Iterator[Connection]:
    """A connection in a transaction that holds the table ``settings``, rolled back at the end."""
    engine = create_engine(postgres_url)
    with engine.connect() as connection, connection.begin() as transaction:
        connection.exec_driver_sql(TABLE.replace("%", "%%"))
        yield connection
        transaction.rollback()
    engine.dispose()


def stored_column(connection: Connection, name: str) -> Column[Any]:
    """The column ``name`` of ``settings`` as Alembic reflects it."""
    return Table("settings", MetaData(), autoload_with=connection).c[name]


def model_column(name: str, type_: Any, default: Any) -> Column[Any]:
    """A model column ``name`` of a model table ``settings`` with ``server_default=default``."""
    column: Column[Any] = Column(name, type_, server_default=default)
    Table("settings", MetaData(), Column("id", Integer, primary_key=True), column)
    return column


def compared(
    connection: Connection,
    name: str,
    type_: Any,
    default: object,
) -> tuple[bool | None, list[str]]:
    """Whether the default of ``name`` changed, and the statements the comparison sent."""
    stored, model = stored_column(connection, name), model_column(name, type_, default)
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(connection, "before_cursor_execute", record)
    try:
        return default_changed(connection, connection.dialect, stored, model), sent
    finally:
        event.remove(connection, "before_cursor_execute", record)


def assert_nothing_left(connection: Connection) -> None:
    """No probe table, no open savepoint, and the transaction still holds ``settings``."""
    leftover = "SELECT to_regclass('pgkeel_default_probe'), to_regclass('settings') IS NOT NULL"
    assert connection.exec_driver_sql(leftover).one() == (None, True)
    missing = 'savepoint "pgkeel_probe" does not exist'
    with pytest.raises(DBAPIError, match=missing), connection.begin_nested():
        connection.exec_driver_sql("RELEASE SAVEPOINT pgkeel_probe")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_each_boolean_spelling_reads_as_postgresql_stores_it(
    connection: Connection, spelling: str
) -> None:
    column = stored_column(connection, "flag")
    literal = f"'{spelling}'"
    assert boolean_form(column, literal) == server_default_form(connection, column, literal)
    assert_nothing_left(connection)


@pytest.mark.parametrize(
    ("default", "expected"),
    [("0", False), ("off", False), ("1", True), (" YES ", True), (text("false"), False)],
)
def test_a_boolean_default_is_compared_without_asking_the_server(
    connection: Connection, default: object, expected: bool
) -> None:
    assert compared(connection, "flag", Boolean, default) == (expected, [])


@pytest.mark.parametrize(
    ("name", "type_", "default", "expected"),
    [
        ("flag", Boolean, "maybe", True),  # not a boolean spelling: the server refuses it
        ("flag", Boolean, "yess", True),
        ("on%", Boolean, text("NOT false"), True),  # another expression of the same value
        ("on%", Boolean, text("1 = 0"), True),
        ("amount", Integer, text("CASE WHEN true THEN 0 END"), False),
        ("amount", Integer, text("CASE WHEN true THEN 1 END"), True),
        ("amount", Integer, text("no_such_function()"), True),
        ("label", Text, text("CASE WHEN true THEN 'a:b' END"), False),
        ("label", Text, text("CASE WHEN true THEN 'a:c' END"), True),
        ("label", Text, "a%b", True),
    ],
)
def test_a_default_the_text_cannot_settle_is_asked_of_the_server(
    connection: Connection, name: str, type_: Any, default: object, expected: bool
) -> None:
    found, sent = compared(connection, name, type_, default)
    assert found is expected
    assert len(sent) == 2  # two round trips: the copy, then the read (or the rollback)
    assert "pgkeel_default_probe" in sent[0]
    assert_nothing_left(connection)


@pytest.mark.parametrize(("default", "expected"), [(text("'100%'"), False), ("100%", False)])
def test_a_percent_in_a_default_is_compared_as_written(
    connection: Connection, default: object, expected: bool
) -> None:
    assert compared(connection, "ratio", Text, default) == (expected, [])


def test_a_changed_default_with_a_percent_is_reported(connection: Connection) -> None:
    found, sent = compared(connection, "ratio", Text, text("'50%'"))
    assert (found, len(sent)) == (True, 2)
    assert_nothing_left(connection)


@pytest.mark.parametrize(
    ("where", "expected"), [("ratio LIKE '1%'", False), ("ratio LIKE '2%'", True)]
)
def test_a_percent_in_an_index_predicate_is_compared_as_written(
    connection: Connection, where: str, expected: bool
) -> None:
    (reflected,) = Table("settings", MetaData(), autoload_with=connection).indexes
    table = Table("settings", MetaData(), Column("amount", Integer), Column("ratio", Text))
    model = Index("ix_settings_amount", table.c.amount, postgresql_where=text(where))
    assert predicate_changed(model, reflected, connection.dialect, connection) is expected
    assert_nothing_left(connection)


@pytest.mark.parametrize(
    ("check", "expected"), [("ratio LIKE '%!%'", False), ("ratio LIKE '%?'", True)]
)
def test_a_percent_in_a_check_is_compared_as_written(
    connection: Connection, check: str, expected: bool
) -> None:
    reflected_table = Table("settings", MetaData(), autoload_with=connection)
    (reflected,) = (c for c in reflected_table.constraints if isinstance(c, CheckConstraint))
    model = CheckConstraint(text(check), name="ck_settings_ratio")
    Table("settings", MetaData(), Column("ratio", Text), model)
    assert check_changed(model, reflected, connection.dialect, connection) is expected
    assert_nothing_left(connection)
