"""Server defaults compared as PostgreSQL stores them: a changed default is always reported.

Each case compares a model's default with the default of a real table (made in a transaction
rolled back at the end), as the plugin does on ``alembic check``: the text first, then a boolean
literal as PostgreSQL's boolean input reads it, then PostgreSQL's own stored form (the probe).
The probe must leave nothing behind, even when PostgreSQL refuses the model's default. A ``%``
in a model's SQL (a default, a check, an index predicate) is compared as written, not as the
driver's escaped form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from alembic_extensions.checks import check_changed
from alembic_extensions.defaults import (
    boolean_form,
    default_changed,
    integer_form,
    server_default_form,
)
from alembic_extensions.indexes import predicate_changed

TABLE = """
CREATE TABLE settings (
    flag boolean DEFAULT false,
    "on%" boolean DEFAULT true,
    amount integer DEFAULT (CASE WHEN true THEN 0 END),
    label text DEFAULT (CASE WHEN true THEN 'a:b' END),
    ratio text DEFAULT '100%',
    counter integer DEFAULT 0,
    big bigint DEFAULT '5',
    small smallint DEFAULT -3,
    CONSTRAINT ck_settings_ratio CHECK (ratio LIKE '%!%')
);
CREATE INDEX ix_settings_amount ON settings (amount) WHERE ratio LIKE '1%';
CREATE TABLE rules (
    code text,
    "Code" text,
    status text DEFAULT 'pending',
    a integer, b integer, c integer,
    CONSTRAINT ck_rules_code CHECK (code ~ '^[a-z]{3}$'),
    CONSTRAINT ck_rules_abc CHECK (a > 0 OR (b > 0 AND c > 0)),
    CONSTRAINT ck_rules_quoted CHECK ("Code" <> 'x')
);
CREATE INDEX ix_rules_code ON rules (code) WHERE status = 'active'
"""
SPELLINGS = ["0", "1", "t", "F", "true", "FALSE", " yes ", "No", "on", "OFF", "y", "\tn\n"]
DECIMALS = ["0", "7", " 007 ", "+5", "-3", "-0", "\t12\n", "32767", "-32768", "2147483647"]
DECIMALS += ["-2147483648", "2147483648", "9223372036854775807", "-9223372036854775809"]
NOT_DECIMALS = ["", "1.0", "1e3", "0x10", "1_000", "٣", "- 3", "5 5"]


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


def sent_by(connection: Connection, work: Callable[[], bool | None]) -> tuple[bool | None, int]:
    """What ``work`` found, and how many statements it sent to the server."""
    sent: list[object] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(connection, "before_cursor_execute", record)
    try:
        return work(), len(sent)
    finally:
        event.remove(connection, "before_cursor_execute", record)


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


@pytest.mark.parametrize("name", ["amount", "small", "big"])
@pytest.mark.parametrize("spelling", DECIMALS + NOT_DECIMALS)
def test_each_integer_literal_reads_as_postgresql_stores_it(
    connection: Connection, name: str, spelling: str
) -> None:
    column = stored_column(connection, name)
    literal = f"'{spelling}'"
    known = integer_form(column, literal)
    if spelling in NOT_DECIMALS:
        assert known is None  # left to the server, whatever its version reads
    in_range = {"amount": 2**31, "small": 2**15, "big": 2**63}[name]
    if spelling in DECIMALS and -in_range <= int(spelling) < in_range:
        assert known is not None
    if known is not None:
        assert known == server_default_form(connection, column, literal)
    assert_nothing_left(connection)


@pytest.mark.parametrize(
    ("name", "type_", "default", "expected"),
    [
        ("counter", Integer, "0", False),
        ("counter", Integer, " 00 ", False),
        ("counter", Integer, "-0", False),
        ("counter", Integer, "1", True),
        ("big", BigInteger, "+5", False),
        ("big", BigInteger, "6", True),
        ("small", SmallInteger, "-3", False),
        ("small", SmallInteger, "3", True),
    ],
)
def test_an_integer_default_is_compared_without_asking_the_server(
    connection: Connection, name: str, type_: Any, default: str, expected: bool
) -> None:
    assert compared(connection, name, type_, default) == (expected, [])


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


def rules_table(connection: Connection) -> Table:
    """The table ``rules`` as Alembic reflects it."""
    return Table("rules", MetaData(), autoload_with=connection)


def model_rules(*items: Any) -> Table:
    """A model table ``rules`` with the columns of the real one and ``items``."""
    names = ("code", "Code", "status", "a", "b", "c")
    columns = [Column(name, Text if name in names[:3] else Integer) for name in names]
    return Table("rules", MetaData(), *columns, *items)


@pytest.mark.parametrize(
    ("name", "check", "expected", "round_trips"),
    [
        ("ck_rules_code", "code ~ '^[A-Z]{3}$'", True, 3),  # only inside a literal
        ("ck_rules_code", "code ~ '^[a-z]{3}$'", False, 0),
        ("ck_rules_code", "((code ~ '^[a-z]{3}$'::text))", False, 0),  # the server's spelling
        ("ck_rules_abc", "(a > 0 OR b > 0) AND c > 0", True, 3),  # the grouping changes
        ("ck_rules_abc", "a > 0 OR b > 0 AND c > 0", False, 0),  # AND binds first: the same
        ("ck_rules_abc", "((a > 0) OR ((b > 0) AND (c > 0)))", False, 0),
        ("ck_rules_quoted", "\"Code\" <> 'x'", False, 0),
        ("ck_rules_quoted", "code <> 'x'", True, 3),  # another column
        ("ck_rules_quoted", "\"Code\" <> 'X'", True, 3),
    ],
)
def test_a_check_changed_only_in_a_literal_a_name_or_its_grouping_is_reported(
    connection: Connection, name: str, check: str, expected: bool, round_trips: int
) -> None:
    (reflected,) = (c for c in rules_table(connection).constraints if c.name == name)
    model = CheckConstraint(text(check), name=name)
    model_rules(model)
    found = sent_by(
        connection, lambda: check_changed(model, reflected, connection.dialect, connection)
    )
    assert found == (expected, round_trips)  # the stored form read, then the probe's two
    assert_nothing_left(connection)


@pytest.mark.parametrize(
    ("where", "expected", "round_trips"),
    [
        ("status = 'ACTIVE'", True, 2),
        ("status = 'active '", True, 2),
        ("status = 'active'", False, 0),
        ("(status = 'active'::text)", False, 0),
    ],
)
def test_an_index_predicate_changed_only_inside_a_literal_is_reported(
    connection: Connection, where: str, expected: bool, round_trips: int
) -> None:
    (reflected,) = rules_table(connection).indexes
    model_table = model_rules()
    model = Index("ix_rules_code", model_table.c.code, postgresql_where=text(where))
    found = sent_by(
        connection, lambda: predicate_changed(model, reflected, connection.dialect, connection)
    )
    assert found == (expected, round_trips)
    assert_nothing_left(connection)


@pytest.mark.parametrize(
    ("default", "expected", "round_trips"),
    [("Pending", True, 2), ("pending ", True, 2), ("pending", False, 0)],
)
def test_a_default_changed_only_in_its_letters_case_or_spaces_is_reported(
    connection: Connection, default: str, expected: bool, round_trips: int
) -> None:
    stored = rules_table(connection).c.status
    model: Column[Any] = Column("status", Text, server_default=default)
    Table("rules", MetaData(), model)
    found = sent_by(
        connection, lambda: default_changed(connection, connection.dialect, stored, model)
    )
    assert found == (expected, round_trips)
    assert_nothing_left(connection)


@pytest.mark.parametrize(
    ("type_sql", "stored_default", "default", "expected"),
    [
        ("varchar(20)", "open", "open", False),
        ("varchar(20)", "open", "Open", True),
        ("varchar(20)", "open", "open ", True),
        ("integer", "-1", "-1", False),
        ("integer", "-1", "-2", True),
        ("text", "", "", False),
        ("text", "", " ", True),
    ],
)
def test_a_literal_default_stored_with_its_cast_is_settled_from_the_text(
    connection: Connection, type_sql: str, stored_default: str, default: str, expected: bool
) -> None:
    """PostgreSQL stores ``'open'::character varying``: no round trip, and a change is reported."""
    connection.exec_driver_sql(f"CREATE TABLE casts (value {type_sql} DEFAULT '{stored_default}')")
    try:
        stored = Table("casts", MetaData(), autoload_with=connection).c.value
        model: Column[Any] = Column("value", Text, server_default=default)
        Table("casts", MetaData(), model)
        found = sent_by(
            connection, lambda: default_changed(connection, connection.dialect, stored, model)
        )
    finally:
        connection.exec_driver_sql("DROP TABLE casts")
    assert found[0] is expected
    if not expected:
        assert found[1] == 0
