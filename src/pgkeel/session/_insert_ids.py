"""One new id per row for ``insert(M).from_select(...)`` on models whose ids Python makes.

SQLAlchemy evaluates a Python column default once per statement; ``from_select`` puts that one
value in the SELECT, so every copied row would get the same UUIDv7 (a primary-key violation as
soon as two rows are copied). Such columns are added to the SELECT as a UUIDv7 that PostgreSQL
makes per row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Uuid, literal_column, select

from pgkeel.mixins import SERVER_UUID7_SQL, new_id
from pgkeel.session import _sqlalchemy_private as private

if TYPE_CHECKING:
    from sqlalchemy.sql.base import Executable


def _name(key: object) -> str | None:
    if isinstance(key, str):
        return key
    return getattr(key, "key", None) or getattr(key, "name", None)


def _makes_new_id(column: Any) -> bool:  # noqa: ANN401  # a Column
    default = column.default
    if default is None or not getattr(default, "is_callable", False):
        return False
    function = default.arg
    return function is new_id or getattr(function, "__wrapped__", None) is new_id


def _with_columns(query: Any, columns: list[Any]) -> Any:  # noqa: ANN401  # a SELECT
    """``query`` with ``columns`` added to what it selects (a compound SELECT is wrapped)."""
    if isinstance(query, Select):
        return query.add_columns(*columns)
    inner = query.subquery()
    return select(*inner.c, *columns)


def with_row_ids(statement: Executable) -> Executable:
    """``statement`` whose ``from_select`` gives each row its own UUIDv7 where Python would not."""
    found = private.insert_from_select(statement)
    table = getattr(statement, "table", None)
    if found is None or table is None:
        return statement
    names, query = found
    given = {_name(name) for name in names}
    missing = [c for c in table.c if c.name not in given and _makes_new_id(c)]
    if not missing:
        return statement
    made = [literal_column(SERVER_UUID7_SQL, Uuid()).label(c.name) for c in missing]
    return private.with_insert_from_select(
        statement, [*names, *(c.name for c in missing)], _with_columns(query, made)
    )
