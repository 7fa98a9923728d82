"""Keyset pagination: pages of any ``select()`` in a stable order, with opaque, signed cursors.

``paginate(session, select(Project), limit=50, after=cursor)`` orders the statement by a key
(default ``(created_at, id)`` of its first entity), fetches the rows that come after the cursor's
position with ``WHERE (key) > (cursor values)``, and returns a ``Page`` with the items and the
cursor of the next page. Unlike ``OFFSET``, a page costs the same at any depth (an index on the
key serves it), and rows inserted or deleted between two requests never make a row that existed
throughout appear twice or not at all.

A cursor is the key values of the last row, signed with HMAC-SHA256 over those values, the key
and the current tenant. A changed cursor, one made for another list or another tenant, or one
signed by a process with another secret is refused with ``InvalidCursorError``: it never reaches
SQL. Set ``PGKEEL_CURSOR_SECRET`` (or pass ``secret=``) so that every process of a service
accepts the others' cursors; without it each process signs with a random secret of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeAlias, TypeVar

from sqlalchemy import (
    Column,
    Index,
    Integer,
    Select,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    inspect,
    select,
    tuple_,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList
from sqlalchemy.sql.selectable import Alias, Join
from sqlalchemy.sql.visitors import iterate

from pgkeel.errors import PgkeelError
from pgkeel.tenancy import TENANT_COLUMN, current_tenant, is_tenant_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from sqlalchemy import ColumnElement, FromClause
    from sqlalchemy.orm import Session

T = TypeVar("T")
_AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"  # a select() of any columns

CURSOR_SECRET_ENV: Final = "PGKEEL_CURSOR_SECRET"  # noqa: S105  # a variable name, not a secret
"""Environment variable holding the secret that signs cursors (the same in every process)."""
DEFAULT_KEY: Final = ("created_at", "id")
"""Attributes of the statement's first entity that order its pages unless ``key=`` is given."""
_PROCESS_SECRET: Final = secrets.token_bytes(32)
_MAC_BYTES: Final = 16
_KEY_LABEL: Final = "pgkeel_page_key_{}"

Total = Literal["exact", "estimate"]


class PaginationError(PgkeelError, ValueError):
    """``paginate`` was called with arguments that cannot give stable pages."""


class InvalidCursorError(PaginationError):
    """A cursor was changed, forged, or made for another list, tenant or secret."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page: its items, the cursor of the next page (None on the last) and the total."""

    items: list[T]
    next_cursor: str | None
    total: int | None = None
    """Rows of the whole list: exact, the planner's estimate, or None when not asked for."""

    @property
    def has_next(self) -> bool:
        """Whether another page follows this one."""
        return self.next_cursor is not None


# --- the key -----------------------------------------------------------------------------------


def _expression(item: Any) -> ColumnElement[Any]:  # noqa: ANN401  # a column or an attribute
    """The SQL expression of a key item (an ORM attribute gives its column)."""
    clause = getattr(item, "__clause_element__", None)
    return clause() if clause is not None else item  # type: ignore[no-any-return]


def _default_key(statement: _AnySelect) -> list[ColumnElement[Any]]:
    """``(created_at, id)`` of the statement's first entity, or an error asking for ``key=``."""
    entity = statement.column_descriptions[0].get("entity")
    names = inspect(entity).columns.keys() if entity is not None else []
    if not set(DEFAULT_KEY) <= set(names):
        raise PaginationError(
            f"paginate(): the statement {_first_line(statement)!r} selects no entity with "
            f"{' and '.join(DEFAULT_KEY)} columns, so there is no default order. Fix: pass "
            "key=(<column>, ..., <primary key>), e.g. key=(Invoice.issued_on, Invoice.id)."
        )
    return [_expression(getattr(entity, name)) for name in DEFAULT_KEY]


def _first_line(statement: _AnySelect) -> str:
    return str(statement).splitlines()[0]


def _plain(source: Any) -> Any:  # noqa: ANN401  # a table, an alias, a subquery...
    """``source`` without the ORM's annotations: the object its columns name as their table."""
    deannotate = getattr(source, "_deannotate", None)
    return deannotate() if deannotate is not None else source


def _table_of(source: object) -> Table | None:
    """The table a FROM element reads rows of: itself, or the table it aliases; else None."""
    if isinstance(source, Alias):
        source = source.element
    return source if isinstance(source, Table) else None


def _unique_keys(table: Table, *, not_null: bool) -> list[set[str]]:
    """The column names of ``table``'s primary key and unique rules (NOT NULL ones only if asked).

    Two rows may both hold NULL in a unique column: such a rule tells rows apart only where its
    columns are NOT NULL (a key) or compared with ``=`` (a join, where NULL matches nothing).
    """
    rules = [
        rule.columns
        for rule in [*table.constraints, *table.indexes]
        if isinstance(rule, UniqueConstraint) or (isinstance(rule, Index) and rule.unique)
    ]
    keys = [{column.name for column in table.primary_key.columns}]
    keys += [
        {column.name for column in columns}
        for columns in rules
        if not (not_null and any(column.nullable for column in columns))
    ]
    return [key for key in keys if key]


def _identifies_rows(source: object, names: set[str]) -> bool:
    """Whether ``names`` include the primary key or a NOT NULL unique rule of ``source``."""
    table = _table_of(source)
    return table is not None and any(key <= names for key in _unique_keys(table, not_null=True))


def _key_columns_by_source(key: Sequence[ColumnElement[Any]]) -> dict[Any, set[str]]:
    """The key's column names per FROM element (a table or an alias of one)."""
    sources: dict[Any, set[str]] = {}
    for expression in key:
        if isinstance(expression, Column) and expression.table is not None:
            sources.setdefault(_plain(expression.table), set()).add(expression.name)
    if isinstance(current_tenant(), uuid.UUID):  # one tenant's rows: tenant_id is fixed
        for source, names in sources.items():
            table = _table_of(source)
            if table is not None and is_tenant_table(table):
                names.add(TENANT_COLUMN)
    return sources


def _from_elements(statement: _AnySelect) -> tuple[list[FromClause], list[ColumnElement[Any]]]:
    """The tables (or other FROM elements) the statement joins, and its join and WHERE criteria."""
    leaves: list[FromClause] = []
    criteria: list[ColumnElement[Any]] = []
    pending: list[FromClause] = list(statement.get_final_froms())
    while pending:
        element = pending.pop()
        if isinstance(element, Join):
            pending += [element.left, element.right]
            if element.onclause is not None:
                criteria.append(element.onclause)
        else:
            leaves.append(_plain(element))
    if statement.whereclause is not None:
        criteria.append(statement.whereclause)
    return leaves, criteria


def _conjuncts(criterion: ColumnElement[Any]) -> Iterator[ColumnElement[Any]]:
    """The terms ``criterion`` ANDs together (an OR, a NOT... is one term, never looked into)."""
    if isinstance(criterion, BooleanClauseList) and criterion.operator is operators.and_:
        for clause in criterion.clauses:
            yield from _conjuncts(clause)
    else:
        yield criterion


def _sources_in(expression: ColumnElement[Any]) -> set[Any]:
    return {
        _plain(element.table)
        for element in iterate(expression)
        if isinstance(element, Column) and element.table is not None
    }


def _bound_names(source: object, criteria: list[ColumnElement[Any]], known: set[Any]) -> set[str]:
    """Columns of ``source`` that an ANDed ``=`` ties to a value, or to a row of ``known``."""
    bound: set[str] = set()
    for criterion in criteria:
        for term in _conjuncts(criterion):
            if not (isinstance(term, BinaryExpression) and term.operator is operators.eq):
                continue
            for mine, other in ((term.left, term.right), (term.right, term.left)):
                if (
                    isinstance(mine, Column)
                    and mine.table is source
                    and _sources_in(other) <= known
                ):
                    bound.add(mine.name)
    return bound


def _one_row_each(source: object, criteria: list[ColumnElement[Any]], known: set[Any]) -> bool:
    """Whether each combination of rows of ``known`` meets at most one row of ``source``."""
    table = _table_of(source)
    if table is None:
        return False  # a subquery, a function: nothing says which of its rows are distinct
    bound = _bound_names(source, criteria, known)
    if isinstance(current_tenant(), uuid.UUID) and is_tenant_table(table):
        bound.add(TENANT_COLUMN)  # pgkeel's filter ties it to the tenant
    return any(key <= bound for key in _unique_keys(table, not_null=False))


def _undetermined(statement: _AnySelect, known: set[Any]) -> list[FromClause]:
    """The FROM elements whose rows may repeat a row of the key's tables (by a join, say)."""
    leaves, criteria = _from_elements(statement)
    pending = [leaf for leaf in leaves if leaf not in known]
    found = True
    while pending and found:
        found = False
        for leaf in list(pending):
            if _one_row_each(leaf, criteria, known):
                known.add(leaf)
                pending.remove(leaf)
                found = True
    return pending


def _require_unique(statement: _AnySelect, key: Sequence[ColumnElement[Any]]) -> None:
    """A key that two result rows may share would skip or repeat rows at page borders: refuse it.

    The key must identify a row of some table (its primary key, or a NOT NULL unique rule), and
    every other table the statement joins must meet at most one row per row of those: joined
    on a unique key of its own (``posts JOIN authors ON authors.id = posts.author_id`` keeps one
    row per post), or identified by the key too.
    """
    shown = ", ".join(str(expression) for expression in key)
    nullable = [str(c) for c in key if isinstance(c, Column) and c.nullable and not c.primary_key]
    if nullable:
        raise PaginationError(
            f"paginate(): the key column {', '.join(nullable)} may be NULL, and a row whose key "
            "holds NULL has no place in the order of the pages (NULL compares with nothing). "
            "Fix: key by NOT NULL columns (Mapped[str], not Mapped[str | None]), ending with "
            "the primary key."
        )
    known = {
        source
        for source, names in _key_columns_by_source(key).items()
        if _identifies_rows(source, names)
    }
    if not known:
        raise PaginationError(
            f"paginate(): the key ({shown}) does not identify one row (it holds no primary key "
            "and no NOT NULL unique rule of a table), so rows with equal key values would be "
            "skipped or repeated between pages. Fix: end the key with the primary key, e.g. "
            "key=(Project.created_at, Project.id)."
        )
    repeated = _undetermined(statement, known)
    if repeated:
        names = ", ".join(str(getattr(element, "name", element)) for element in repeated)
        raise PaginationError(
            f"paginate(): the statement {_first_line(statement)!r} joins {names}, several rows "
            f"of which may meet one row of the key ({shown}): result rows with equal key values "
            "would be skipped or repeated between pages. Fix: add the primary key of each such "
            "table to the end of the key (key=(..., Post.id)), or page the table whose rows you "
            "list and join the others on their own primary key."
        )


def _fingerprint(
    statement: _AnySelect, key: Sequence[ColumnElement[Any]], *, descending: bool
) -> str:
    """What a cursor is bound to besides its values: the list's SQL, its key and direction.

    The SQL is the statement's text, its parameters as placeholders: a cursor of
    ``select(Post)`` is refused on ``select(Post.title)`` or on another filter, and accepted on
    the same statement built anew, with the same or other parameter values (a search term).
    """
    listed = hashlib.sha256(str(statement).encode()).hexdigest()[:16]
    order = ",".join(str(expression) for expression in key) + (" desc" if descending else "")
    return f"{listed}:{order}"


# --- cursors -----------------------------------------------------------------------------------

_ENCODERS: Final[tuple[tuple[type, str, Callable[[Any], Any]], ...]] = (
    (datetime, "t", datetime.isoformat),
    (date, "d", date.isoformat),
    (uuid.UUID, "u", str),
    (bool, "b", bool),
    (int, "i", int),
    (Decimal, "n", str),
    (float, "f", float),
    (str, "s", str),
)
_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "t": datetime.fromisoformat,
    "d": date.fromisoformat,
    "u": uuid.UUID,
    "b": bool,
    "i": int,
    "n": Decimal,
    "f": float,
    "s": str,
}


def _encode_value(value: object, expression: ColumnElement[Any]) -> list[Any]:
    """``[tag, json value]`` for one key value; NULL and unknown types are refused."""
    for kind, tag, encode in _ENCODERS:
        if isinstance(value, kind):
            return [tag, encode(value)]
    problem = "is NULL" if value is None else f"is a {type(value).__name__}"
    raise PaginationError(
        f"paginate(): the key column {expression} {problem} on a row, which a cursor cannot "
        "hold (keyset pagination compares key values, and NULL compares with nothing). Fix: "
        "order by NOT NULL columns of type timestamp, date, uuid, integer, numeric or text."
    )


def _secret(secret: bytes | str | None) -> bytes:
    """The signing secret: the argument, else ``PGKEEL_CURSOR_SECRET``, else this process's."""
    chosen = secret if secret is not None else os.environ.get(CURSOR_SECRET_ENV)
    if chosen is None or chosen == "":
        return _PROCESS_SECRET
    return chosen.encode() if isinstance(chosen, str) else chosen


def _mac(secret: bytes, fingerprint: str, payload: bytes) -> bytes:
    """The signature over the payload, the key and the tenant the page was read as."""
    message = b"\x00".join([fingerprint.encode(), str(current_tenant()).encode(), payload])
    return hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of ``_b64(data)``; any other spelling of them is refused.

    Base64 decoders skip characters outside the alphabet and ignore the unused low bits of the
    last character, so several texts decode to the same bytes: only the one ``_b64`` writes is a
    cursor, so a changed cursor is always refused.
    """
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError(text)
    return data


def encode_cursor(
    values: Sequence[object], key: Sequence[ColumnElement[Any]], *, fingerprint: str, secret: bytes
) -> str:
    """The opaque cursor of a position: its key values, signed."""
    encoded = [
        _encode_value(value, expression) for value, expression in zip(values, key, strict=True)
    ]
    payload = json.dumps(encoded, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, fingerprint, payload))}"


def _invalid(cursor: str, why: str) -> InvalidCursorError:
    shown = cursor if len(cursor) <= 40 else cursor[:37] + "..."
    return InvalidCursorError(
        f"The cursor {shown!r} {why}. A cursor is only valid for the list, the order and the "
        "tenant it was made for. Fix: start again from the first page (no cursor); if the "
        f"service runs several processes, give them all the same {CURSOR_SECRET_ENV}."
    )


def decode_cursor(cursor: str, *, fingerprint: str, secret: bytes, size: int) -> list[Any]:
    """The key values of a cursor made by ``encode_cursor``; ``InvalidCursorError`` otherwise."""
    try:
        payload_text, mac_text = cursor.split(".")
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        raise _invalid(cursor, "is not a cursor this service made") from None
    if not hmac.compare_digest(mac, _mac(secret, fingerprint, payload)):
        raise _invalid(cursor, "was changed, or made for another list, order or tenant")
    try:
        values = [_DECODERS[tag](value) for tag, value in json.loads(payload)]
    except (ValueError, KeyError, TypeError):
        raise _invalid(cursor, "carries values this version cannot read") from None
    if len(values) != size:
        raise _invalid(cursor, "was made for a key of another length")
    return values


# --- the page ----------------------------------------------------------------------------------


def _count(session: Session, statement: _AnySelect, total: Total) -> int:
    """The rows of ``statement``: counted, or the planner's estimate of them."""
    if total == "exact":
        counted = select(func.count()).select_from(statement.order_by(None).subquery())
        return int(session.execute(counted).scalar_one())
    connection = session.connection()
    # IN (...) lists are expanded at execution: render them, as the execution would.
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    plan = connection.exec_driver_sql(
        f"EXPLAIN (FORMAT JSON) {compiled}",  # the statement's own compiled SQL, params bound
        compiled.params,
    ).scalar_one()
    document = json.loads(plan) if isinstance(plan, str) else plan
    return int(document[0]["Plan"]["Plan Rows"])


_MAX_LIMIT: Final = 2**31 - 2
"""The largest limit: the page asks for ``limit + 1`` rows, a PostgreSQL integer."""


def _check_arguments(statement: _AnySelect, limit: int, after: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
        raise PaginationError(
            f"paginate(limit={limit!r}): the limit must be an integer from 1 to {_MAX_LIMIT} (the "
            "most items of a page). Fix: pass limit=50, or the page size your client asked for."
        )
    if after is not None and not isinstance(after, str):
        raise InvalidCursorError(
            f"paginate(after=...): a cursor is the text of a page's next_cursor, not a "
            f"{type(after).__name__}. Fix: pass the string the previous page gave, or None for "
            "the first page."
        )
    if statement._order_by_clauses:  # no public accessor for ORDER BY
        raise PaginationError(
            f"paginate(): the statement {_first_line(statement)!r} has an ORDER BY; pages are "
            "ordered by their key. Fix: remove .order_by(...) and pass its columns as key=(..., "
            "<primary key>)."
        )


# --- the plan of a statement's pages -----------------------------------------------------------


@dataclass
class _Plan:
    """What every page of one statement shares: its key, the cursor's binding, the SQL to run.

    Built once per statement object (and key, and direction) and kept while the statement lives,
    so a statement defined once (at module level, say) costs its ORM introspection and the
    building of the paged SQL once; the SQL objects are then reused, with the limit and the
    cursor's values as bound parameters, and SQLAlchemy's compiled cache finds them at once.
    """

    key: tuple[Any, ...] | None
    """The key as given: held so that the ids that name this plan stay unique while it lives."""
    columns: list[ColumnElement[Any]]
    fingerprint: str
    width: int
    """How many entities or columns the statement itself selects (the key's follow them)."""
    first: _AnySelect
    following: _AnySelect
    unique_checked: set[bool] = field(default_factory=set)
    """The tenant modes (one tenant's rows or not) in which the key was found to identify rows."""


_LIMIT_PARAMETER: Final = "pgkeel_page_limit"
_AFTER_PARAMETER: Final = "pgkeel_page_after_{}"
_PLANS_PER_STATEMENT: Final = 8
_plans: weakref.WeakKeyDictionary[_AnySelect, dict[tuple[Any, ...], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def _build_plan(statement: _AnySelect, key: Sequence[Any] | None, *, descending: bool) -> _Plan:
    columns = [_expression(item) for item in key] if key else _default_key(statement)
    order = [column.desc() if descending else column.asc() for column in columns]
    labels = [column.label(_KEY_LABEL.format(i)) for i, column in enumerate(columns)]
    first = (
        statement.add_columns(*labels)
        .order_by(*order)
        .limit(bindparam(_LIMIT_PARAMETER, type_=Integer()))
    )
    bound = [
        bindparam(_AFTER_PARAMETER.format(i), type_=column.type) for i, column in enumerate(columns)
    ]
    left, right = tuple_(*columns), tuple_(*bound)
    return _Plan(
        key=tuple(key) if key else None,
        columns=columns,
        fingerprint=_fingerprint(statement, columns, descending=descending),
        width=len(statement.column_descriptions),
        first=first,
        following=first.where(left < right if descending else left > right),
    )


def _plan(statement: _AnySelect, key: Sequence[Any] | None, *, descending: bool) -> _Plan:
    """The plan of ``statement``'s pages: remembered while the statement object lives."""
    name = (tuple(id(item) for item in key) if key else None, descending)
    plans = _plans.get(statement)
    plan = plans.get(name) if plans is not None else None
    if plan is None:
        plan = _build_plan(statement, key, descending=descending)
        if plans is None:
            plans = _plans.setdefault(statement, {})
        if len(plans) < _PLANS_PER_STATEMENT:  # a new key object per call is not remembered
            plans[name] = plan
    if isinstance(current_tenant(), uuid.UUID) not in plan.unique_checked:
        _require_unique(statement, plan.columns)
        plan.unique_checked.add(isinstance(current_tenant(), uuid.UUID))
    return plan


def paginate(  # noqa: PLR0913  # every option is keyword-only and named
    session: Session,
    statement: _AnySelect,
    *,
    limit: int,
    after: str | None = None,
    key: Sequence[Any] | None = None,
    descending: bool = False,
    total: Total | None = None,
    secret: bytes | str | None = None,
) -> Page[Any]:
    """The page of ``statement`` after the cursor ``after`` (the first page without one).

    ``key`` orders the pages (default ``(created_at, id)`` of the first entity); it must identify
    one row, so end it with the primary key. ``total="exact"`` counts the rows of the whole list,
    ``total="estimate"`` asks the planner (cheap on big tables). Items are what the statement
    selects: objects for ``select(Model)``, one value for one column, tuples otherwise.
    """
    _check_arguments(statement, limit, after)
    plan = _plan(statement, key, descending=descending)
    columns, signing = plan.columns, _secret(secret)
    parameters: dict[str, Any] = {_LIMIT_PARAMETER: limit + 1}
    paged = plan.first
    if after is not None:
        values = decode_cursor(
            after, fingerprint=plan.fingerprint, secret=signing, size=len(columns)
        )
        parameters.update((_AFTER_PARAMETER.format(i), value) for i, value in enumerate(values))
        paged = plan.following
    rows = session.execute(paged, parameters).all()
    width = plan.width
    items = [row[0] if width == 1 else tuple(row[:width]) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][width:]
        next_cursor = encode_cursor(last, columns, fingerprint=plan.fingerprint, secret=signing)
    counted = _count(session, statement, total) if total is not None else None
    return Page(items=items, next_cursor=next_cursor, total=counted)
