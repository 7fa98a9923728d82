"""The comparators' shortcuts decide as the full comparison would, without a database.

The per-table and per-column comparators settle most items with a cheap test before the full
comparison (and before importing what it needs); the readers of literals and names replace
regular expressions that cost their compilation in the first run of every process.
"""

from __future__ import annotations

import itertools
import re
from types import SimpleNamespace
from typing import Any

import pytest
from alembic.operations.ops import AlterColumnOp
from alembic.util import PriorityDispatchResult
from sqlalchemy import (
    ARRAY,
    TIMESTAMP,
    Boolean,
    Column,
    Enum,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects import postgresql

from alembic_extensions import defaults, expressions
from alembic_extensions.defaults import default_changed
from alembic_extensions.enums import native_enum
from alembic_extensions.plugin import compare_collations, compare_server_defaults

NAME = r'(?:"[^"]+"|[a-z_][a-z_0-9$]*)(?:\.(?:"[^"]+"|[a-z_][a-z_0-9$]*))*'
STRING_LITERAL = r"'(?:[^']|'')*'"
INTEGER_LITERAL = r"\d+"
DECIMAL_LITERAL = r"\d*\.\d+|\d+\.\d*"
FOLDED_IDENTIFIER = r'"([a-z_][a-z0-9_$]*)"'
QUOTED = r"'([^'\\]*)'"
DECIMAL_INTEGER = r"[+-]?[0-9]+"
ARABIC_INDIC_ONE = "\u0661"  # a decimal digit that is not ASCII
SUPERSCRIPT_TWO = "\u00b2"  # a digit (str.isdigit) that is no decimal
ALPHABET = ["a", "z", "_", "0", "$", ".", '"', "'", "-", "+", "\\", "A", "é", " "]
ALPHABET += [ARABIC_INDIC_ONE, SUPERSCRIPT_TWO]


def texts() -> list[str]:
    return [
        "".join(chars) for size in range(5) for chars in itertools.product(ALPHABET, repeat=size)
    ]


def test_the_readers_of_literals_and_names_match_the_patterns_they_replace() -> None:
    for candidate in texts():
        matches = (
            re.fullmatch(NAME, candidate) is not None,
            re.fullmatch(STRING_LITERAL, candidate) is not None,
            re.fullmatch(INTEGER_LITERAL, candidate) is not None,
            re.fullmatch(DECIMAL_LITERAL, candidate) is not None,
            re.fullmatch(FOLDED_IDENTIFIER, f'"{candidate}"') is not None,
            quoted.group(1) if (quoted := re.fullmatch(QUOTED, candidate)) else None,
            re.fullmatch(DECIMAL_INTEGER, candidate) is not None,
        )
        read = (
            expressions._is_name(candidate),
            expressions._is_string_literal(candidate),
            candidate.isdecimal(),
            expressions._is_decimal(candidate),
            expressions._is_folded(candidate),
            defaults._quoted(candidate),
            defaults._is_decimal_integer(candidate),
        )
        assert read == matches, candidate


class UtcTimestamp(TypeDecorator[Any]):
    impl = TIMESTAMP(timezone=True)
    cache_ok = True


class Mood(TypeDecorator[Any]):
    impl = Enum("calm", "angry", name="mood")
    cache_ok = True


class Moods(TypeDecorator[Any]):
    impl = ARRAY(Enum("calm", "angry", name="moods"))
    cache_ok = True


class OwnItemType(TypeDecorator[Any]):
    impl = Text()
    cache_ok = True
    item_type = Enum("a", name="own")


class OwnFallback(TypeDecorator[Any]):
    impl = Text()
    cache_ok = True

    def __getattr__(self, key: str) -> Any:
        if key == "item_type":
            return Enum("a", name="fallback")
        return super().__getattr__(key)


@pytest.mark.parametrize(
    ("type_", "name"),
    [
        (UtcTimestamp(), None),
        (Mood(), "mood"),
        (Moods(), "moods"),  # the decorator reads its implementation's element type
        (OwnItemType(), "own"),
        (OwnFallback(), "fallback"),
        (ARRAY(Mood()), "mood"),
        (postgresql.ARRAY(Enum("x", name="plain")), "plain"),
        (Enum("x", native_enum=False), None),
        (Integer(), None),
    ],
)
def test_a_native_enum_is_found_through_type_decorators_and_arrays(
    type_: Any, name: str | None
) -> None:
    found = native_enum(Column("c", type_))
    assert (None if found is None else found.name) == name


def column_op() -> AlterColumnOp:
    return AlterColumnOp("t", "c")


CONTEXT = SimpleNamespace(dialect=postgresql.dialect(), connection=None, opts={})


@pytest.mark.parametrize(
    ("reflected", "model", "changed"),
    [
        (Column("c", Integer), Column("c", Integer), False),
        (Column("c", Boolean, server_default=text("false")), Column("c", Boolean), True),
        (Column("c", Integer), Column("c", Integer, server_default="0"), True),
    ],
)
def test_a_column_without_defaults_is_settled_as_the_full_comparison_settles_it(
    reflected: Column[Any], model: Column[Any], changed: bool
) -> None:
    assert default_changed(None, CONTEXT.dialect, reflected, model) is changed
    op = column_op()
    result = compare_server_defaults(CONTEXT, op, None, "t", "c", reflected, model)
    assert result is PriorityDispatchResult.STOP
    assert op.existing_server_default is reflected.server_default
    assert (op.modify_server_default is not False) is changed


@pytest.mark.parametrize(
    ("reflected", "model", "changed"),
    [
        (TIMESTAMP(timezone=True), UtcTimestamp(), False),  # no string type: no collation read
        (postgresql.JSONB(), Text(collation="C"), False),
        (Text(), Text(), False),
        (Text(), Text(collation="C"), True),
        (Text(collation="C"), String(), True),
    ],
)
def test_only_a_string_column_can_change_its_collation(
    reflected: Any, model: Any, changed: bool
) -> None:
    op = column_op()
    result = compare_collations(
        CONTEXT, op, None, "t", "c", Column("c", reflected), Column("c", model)
    )
    assert result is PriorityDispatchResult.CONTINUE
    assert (op.modify_type is not None) is changed


def _tickets() -> tuple[Any, Any]:
    from sqlalchemy import Index, MetaData, Table  # noqa: PLC0415

    table = Table(
        "tickets",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("status", String(10)),
    )
    index = Index("ix_tickets_open", table.c.status, postgresql_where=text("status::text <> 'x'"))
    return table, index


def test_a_model_table_changed_in_place_is_read_again() -> None:
    """A column whose type changes between two runs in one process changes the kept casts."""
    from alembic_extensions.indexes import text_casts_kept  # noqa: PLC0415

    table, _index = _tickets()
    assert "status" not in text_casts_kept(table)
    table.c.status.type = Enum("open", "closed", name="ticket_status")
    assert "status" in text_casts_kept(table)


def test_a_model_predicate_is_compiled_again_when_its_casts_or_where_change() -> None:
    """The memo of a model index's predicate holds only for the same WHERE and kept casts."""
    from alembic_extensions.indexes import predicate  # noqa: PLC0415

    _table, index = _tickets()
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    plain = predicate(index, dialect, frozenset())
    kept = predicate(index, dialect, frozenset({"status"}))
    assert plain is not None
    assert kept is not None
    assert "::text" not in plain
    assert "::text" in kept
    assert predicate(index, dialect, frozenset()) == plain
    index.dialect_options["postgresql"]["where"] = text("status <> 'y'")
    assert "'y'" in (predicate(index, dialect, frozenset()) or "")
