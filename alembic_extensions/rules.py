"""The standards a model must meet, checked on ``MetaData`` alone (no database, no Alembic).

Autogenerate (through the plugin) and ``pgkeel check`` both run ``check_tables`` and report
every violation at once. Each violation names its rule id, where it is (``table.column``), what
is wrong, how to fix it, and how to opt that one object out: list the rule id under
``"pgkeel_allow"`` in the ``info`` of the Table, Column, Index, Constraint or ForeignKey, for
example ``mapped_column(info=pgkeel.naming.allow("jsonb"))``. A project turns a rule off or down
to a warning for every table in ``[tool.pgkeel.rules]`` (see ``pgkeel.settings``); the rule ids
themselves live in ``pgkeel.rules``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Interval,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import InvalidRequestError, NoReferencedTableError
from sqlalchemy.sql.elements import _truncated_label

from pgkeel import rules
from pgkeel._values import Value
from pgkeel.dbobjects import Policy, RowLevelSecurity, required_by
from pgkeel.indexes import key_names
from pgkeel.naming import (
    MAX_IDENTIFIER_BYTES,
    allows,
    byte_length,
    check_table_opt_outs,
    is_snake_case,
    pluralize,
)
from pgkeel.settings import DEFAULT_SETTINGS, Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sqlalchemy import Table
    from sqlalchemy.sql.compiler import IdentifierPreparer
    from sqlalchemy.sql.schema import Constraint, SchemaItem
    from sqlalchemy.types import TypeEngine

TENANT_COLUMN = "tenant_id"
TENANT_INFO_KEY = "pgkeel_tenant"
RULE_IDS = tuple(rule.id for rule in rules.RULES.values() if rule.settable)
"""The ids of the rules ``check_tables`` checks (every one a project can set)."""


class Violation(Value):
    """One broken standard: rule id, where, what is wrong, the fix, and the opt-out."""

    rule: str
    where: str
    problem: str
    fix: str
    opt_out: str

    def __str__(self) -> str:
        return (
            f"[{self.rule}] {self.where}: {self.problem}\n"
            f"    fix: {self.fix}\n"
            f"    opt out: {self.opt_out}"
        )


def format_violations(violations: Iterable[Violation], *, heading: str) -> str:
    """A report of ``violations``, one paragraph each, under ``heading``."""
    items = list(violations)
    noun = "problem" if len(items) == 1 else "problems"
    body = "\n\n".join(str(item) for item in items)
    return f"{heading}: {len(items)} {noun}.\n\n{body}"


def allowed(rule: str, *items: SchemaItem) -> bool:
    """Whether one of ``items`` (a Column, Index, Table...) lists ``rule`` under pgkeel_allow."""
    return any(allows(item, rule) for item in items)


def _opt_out(rule: str, owner: str) -> str:
    return f"{owner} info=pgkeel.naming.allow({rule!r})"


@cache  # one string a rule id, asked for by each violation
def _column_opt_out(rule: str) -> str:
    return _opt_out(rule, "mapped_column(...,") + ")"


@cache
def _table_opt_out(rule: str) -> str:
    return "__table_args__ = {'info': pgkeel.naming.allow(" + repr(rule) + ")}"


def _base_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    return type_.impl_instance if isinstance(type_, TypeDecorator) else type_


# The column rules run on every column of every table at each autogenerate, and nearly every
# column passes: each first asks one ``isinstance`` of the column's type that rules out most
# types (a ``TypeDecorator`` may wrap anything, so it always goes on to the full test). They
# walk ``table.c``, the collection ``table.columns`` returns, without that property's call.
_MAYBE_TIMESTAMP = (DateTime, TypeDecorator)
_MAYBE_JSON = (JSON, TypeDecorator)


def _is_naive_timestamp(type_: TypeEngine[Any]) -> bool:
    """A timestamp without time zone; an ``Interval`` (a duration, not a moment) is not one."""
    if isinstance(type_, Interval):  # stored as interval, though its impl is DateTime
        return False
    base = _base_type(type_)
    return isinstance(base, DateTime) and not base.timezone


def _columns_typed(
    table: Table,
    rule: str,
    maybe: tuple[type[TypeEngine[Any]], ...],
    broken: Callable[[TypeEngine[Any]], bool],
) -> Iterator[Column[Any]]:
    """The columns of ``table`` whose type ``broken`` finds against ``rule``, not opted out.

    ``maybe``: the type classes that can break the rule at all (one ``isinstance`` each column).
    """
    for column in table.c:
        type_ = column.type
        if isinstance(type_, maybe) and broken(type_) and not allowed(rule, column, table):
            yield column


def _timestamptz(table: Table, _settings: Settings) -> Iterator[Violation]:
    for column in _columns_typed(table, rules.TIMESTAMPTZ, _MAYBE_TIMESTAMP, _is_naive_timestamp):
        yield Violation(
            rules.TIMESTAMPTZ,
            f"{table.name}.{column.name}",
            "timestamp without time zone: its values change meaning with the server's TimeZone.",
            "annotate it Mapped[datetime] with no explicit type (pgkeel maps it to timestamptz) "
            "or use DateTime(timezone=True).",
            _column_opt_out(rules.TIMESTAMPTZ),
        )


def _is_integer_key(column: Column[Any]) -> bool:
    """Whether a primary-key column is an integer that is not also a foreign key."""
    return isinstance(_base_type(column.type), Integer) and not column.foreign_keys


def _uuid_primary_key(table: Table, _settings: Settings) -> Iterator[Violation]:
    for column in table.c:
        if not column.primary_key or not _is_integer_key(column):
            continue
        if allowed(rules.UUID_PRIMARY_KEY, column, table):
            continue
        yield Violation(
            rules.UUID_PRIMARY_KEY,
            f"{table.name}.{column.name}",
            f"integer primary key ({column.type}): ids that can be guessed and counted, and "
            "that clash when rows move between databases.",
            "use UUIDPrimaryKeyMixin (or BaseModel): a uuid id, UUIDv7 from Python, "
            "gen_random_uuid() from SQL.",
            _column_opt_out(rules.UUID_PRIMARY_KEY),
        )


def _noun_index(parts: list[str]) -> int:
    """Index of the last part that is a word (``events_2024`` is plural by ``events``).

    Read from the end: the last part (nearly always the word) decides most names at once.
    """
    for index in range(len(parts) - 1, -1, -1):
        if any(c.isalpha() for c in parts[index]):
            return index
    return len(parts) - 1


def _plural_table_name(table: Table, _settings: Settings) -> Iterator[Violation]:
    name = table.name
    parts = name.split("_")
    noun = _noun_index(parts)
    plural_snake = is_snake_case(name) and pluralize(parts[noun]) == parts[noun]
    if plural_snake or allowed(rules.PLURAL_TABLE_NAME, table):
        return
    expected = "_".join([*parts[:noun], pluralize(parts[noun].lower()), *parts[noun + 1 :]])
    yield Violation(
        rules.PLURAL_TABLE_NAME,
        name,
        "table name is not plural snake_case.",
        f"name it like {expected.lower()!r}: drop __tablename__ and let pgkeel derive it from "
        "the class name, or write the plural yourself.",
        _table_opt_out(rules.PLURAL_TABLE_NAME),
    )


def _snake_case_column(table: Table, _settings: Settings) -> Iterator[Violation]:
    for column in table.c:
        if is_snake_case(column.name) or allowed(rules.SNAKE_CASE_COLUMN, column, table):
            continue
        yield Violation(
            rules.SNAKE_CASE_COLUMN,
            f"{table.name}.{column.name}",
            "column name is not snake_case (lower-case letters, digits, underscores): a "
            "mixed-case name must be double-quoted in every SQL statement.",
            "rename the attribute, or keep it and name the column: mapped_column('snake_name').",
            _column_opt_out(rules.SNAKE_CASE_COLUMN),
        )


def _fits_at_a_glance(name: str) -> bool:
    """Whether ``name`` is short ASCII: one byte a character, and too short for SQLAlchemy to cut.

    Such a name (nearly every name) fits PostgreSQL's limit as it is written.
    """
    return name.isascii() and len(name) <= MAX_IDENTIFIER_BYTES


def _long_named_items(table: Table) -> list[tuple[str, Any]]:
    """The table, columns, constraints and indexes (in that order) whose name may be too long.

    Each as (name, item). Every other name fits at a glance; the names of columns, constraints
    and indexes are tested in line, without a call for each.
    """
    found: list[tuple[str, Any]] = []
    if not _fits_at_a_glance(table.name):
        found.append((table.name, table))
    found.extend(
        (column.name, column)
        for column in table.c
        if not (column.name.isascii() and len(column.name) <= MAX_IDENTIFIER_BYTES)
    )
    items: list[Constraint | Index] = [*table.constraints, *table.indexes]
    found.extend(
        (name, item)
        for item in items
        if isinstance(name := item.name, str)
        and not (name.isascii() and len(name) <= MAX_IDENTIFIER_BYTES)
    )
    return found


def _where(table: Table, item: Any) -> str:  # noqa: ANN401  # any named item of the table
    if item is table:
        return str(table.name)
    if isinstance(item, Column):
        return f"{table.name}.{item.name}"
    return f"{table.name} ({type(item).__name__} {item.name})"


@cache
def _postgresql_identifiers() -> IdentifierPreparer:
    """PostgreSQL's identifier preparer, made on first use: only a long name ever needs it."""
    dialect: postgresql.base.PGDialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return dialect.identifier_preparer


def _final_name(name: str) -> str:
    """The name PostgreSQL is sent: SQLAlchemy shortens convention names itself, with a hash."""
    if not isinstance(name, _truncated_label):
        return name
    rendered = _postgresql_identifiers().truncate_and_render_constraint_name(name)
    return rendered[1:-1].replace('""', '"') if rendered.startswith('"') else rendered


def _identifier_length(table: Table, _settings: Settings) -> Iterator[Violation]:
    for name, item in _long_named_items(table):
        length = byte_length(_final_name(name))
        if length > MAX_IDENTIFIER_BYTES and not allowed(rules.IDENTIFIER_LENGTH, item, table):
            yield Violation(
                rules.IDENTIFIER_LENGTH,
                _where(table, item),
                f"{name!r} is {length} bytes; PostgreSQL keeps {MAX_IDENTIFIER_BYTES} bytes of "
                "an identifier and silently cuts the rest.",
                "use a shorter name (or no explicit name for constraints and indexes: the "
                "convention fits them to 63 bytes).",
                _opt_out(rules.IDENTIFIER_LENGTH, "the object's") + " (the name will still be cut)",
            )


def is_tenant_table(table: Table) -> bool:
    """A table with a ``tenant_id`` column, or marked ``info["pgkeel_tenant"]``."""
    return TENANT_COLUMN in table.c or bool(table.info.get(TENANT_INFO_KEY))


def covers_foreign_key(table: Table, columns: list[str]) -> bool:
    """Whether an index on ``columns`` (in order) starts with all of some FK's columns."""
    for fk in table.foreign_key_constraints:
        width = len(fk.column_keys)
        if width and set(columns[:width]) == {element.parent.name for element in fk.elements}:
            return True
    return False


_BTREE_GIN_FIX = (
    f"put {TENANT_COLUMN} first, and install the btree_gin extension, without which a GIN index "
    f"cannot hold {TENANT_COLUMN} (PostgreSQL: 'data type uuid has no default operator class for "
    "access method gin'): op.execute('CREATE EXTENSION IF NOT EXISTS btree_gin') in a migration "
    "before the one that builds the index (creating an extension may need a superuser or a "
    "trusted-extension grant)."
)


def _is_gin(item: Index | UniqueConstraint) -> bool:
    return (
        isinstance(item, Index)
        and str(item.dialect_options["postgresql"]["using"]).lower() == "gin"
    )


def _tenant_leading_fix(item: Index | UniqueConstraint) -> str:
    if _is_gin(item):
        return _BTREE_GIN_FIX
    return (
        f"put {TENANT_COLUMN} first: Index(..., '{TENANT_COLUMN}', ...) / "
        f"UniqueConstraint('{TENANT_COLUMN}', ...). Indexes that cover a foreign key are exempt."
    )


def _tenant_leading_column(table: Table, _settings: Settings) -> Iterator[Violation]:
    if not is_tenant_table(table):
        return
    items: list[Index | UniqueConstraint] = [
        *table.indexes,
        *(c for c in table.constraints if isinstance(c, UniqueConstraint)),
    ]
    for item in items:
        names = key_names(item)
        fk_index = not getattr(item, "unique", True) and covers_foreign_key(table, names)
        if names[:1] == [TENANT_COLUMN] or fk_index:
            continue
        if allowed(rules.TENANT_LEADING_COLUMN, item, table):
            continue
        kind = "unique constraint" if isinstance(item, UniqueConstraint) else "index"
        yield Violation(
            rules.TENANT_LEADING_COLUMN,
            f"{table.name} ({kind} {item.name} on {', '.join(names) or 'an expression'})",
            f"{kind} on a tenant table does not start with {TENANT_COLUMN}: every query is "
            "filtered by tenant, and a unique key without it leaks across tenants.",
            _tenant_leading_fix(item),
            _opt_out(rules.TENANT_LEADING_COLUMN, f"{kind.title().replace(' ', '')}(...,") + ")",
        )


def _is_plain_json(type_: TypeEngine[Any]) -> bool:
    """A ``json`` type (kept as text), not ``jsonb``."""
    base = _base_type(type_)
    return isinstance(base, JSON) and not isinstance(base, JSONB)


def _jsonb(table: Table, _settings: Settings) -> Iterator[Violation]:
    for column in _columns_typed(table, rules.JSONB, _MAYBE_JSON, _is_plain_json):
        yield Violation(
            rules.JSONB,
            f"{table.name}.{column.name}",
            "json column: stored as text, re-parsed on every read, no indexes, no equality.",
            "annotate it Mapped[dict[str, Any]] with no explicit type (pgkeel maps it to "
            "jsonb) or use sqlalchemy.dialects.postgresql.JSONB.",
            _column_opt_out(rules.JSONB),
        )


def _tenant_rls(table: Table, _settings: Settings) -> Iterator[Violation]:
    if not is_tenant_table(table) or allowed(rules.TENANT_RLS, table):
        return
    objects = required_by(table)
    has_rls = any(isinstance(obj, RowLevelSecurity) for obj in objects)
    has_policy = any(isinstance(obj, Policy) for obj in objects)
    if has_rls and has_policy:
        return
    missing = "row-level security" if not has_rls else "a row-level security policy"
    yield Violation(
        rules.TENANT_RLS,
        table.name,
        f"tenant table without {missing}: raw SQL and other services can read every tenant.",
        "use TenantMixin (or MultiTenantModel), which enables and forces RLS with the tenant "
        "policy.",
        _table_opt_out(rules.TENANT_RLS),
    )


def _referred_table(fk: ForeignKeyConstraint) -> Table | None:
    try:
        return fk.referred_table
    except (InvalidRequestError, NoReferencedTableError):
        return None  # the referenced table is not in this metadata: nothing to compare


def _is_same_tenant_key(fk: ForeignKeyConstraint) -> bool:
    """A key that pairs ``tenant_id`` with ``tenant_id``: PostgreSQL keeps it in one tenant."""
    return any(
        element.parent.name == TENANT_COLUMN and element.column.name == TENANT_COLUMN
        for element in fk.elements
    )


def _tenant_foreign_key(table: Table, _settings: Settings) -> Iterator[Violation]:
    if not is_tenant_table(table):
        return
    for fk in sorted(table.foreign_key_constraints, key=lambda c: tuple(c.column_keys)):
        referred = _referred_table(fk)
        if referred is None or not is_tenant_table(referred) or _is_same_tenant_key(fk):
            continue
        columns = [element.parent for element in fk.elements]
        if allowed(rules.TENANT_FOREIGN_KEY, fk, *columns, table):
            continue
        names = ", ".join(column.name for column in columns)
        target = fk.elements[0].target_fullname
        yield Violation(
            rules.TENANT_FOREIGN_KEY,
            f"{table.name}.{names} -> {target}",
            f"plain foreign key between two tenant tables: foreign-key checks bypass row-level "
            f"security, so a row of one tenant can point at another tenant's {referred.name} "
            "row, and probe which ids exist there.",
            f"replace ForeignKey({target!r}) with __table_args__ = "
            f"(pgkeel.tenancy.tenant_foreign_key({names!r}, {target!r}),): the key "
            f"({TENANT_COLUMN}, {names}) -> ({referred.name}.{TENANT_COLUMN}, ...) keeps both "
            "rows in one tenant; relationship(..., foreign_keys=[...]) names the column.",
            _column_opt_out(rules.TENANT_FOREIGN_KEY) + " (a reference meant to cross tenants)",
        )


def _names(columns: Iterable[Column[Any]]) -> frozenset[str]:
    return frozenset(column.name for column in columns)


def _unique_over_all_rows(table: Table, columns: frozenset[str]) -> bool:
    """Whether ``columns`` are the table's primary key or a unique rule without a predicate."""
    if _names(table.primary_key.columns) == columns:
        return True
    if any(
        isinstance(constraint, UniqueConstraint) and _names(constraint.columns) == columns
        for constraint in table.constraints
    ):
        return True
    return any(
        index.unique
        and index.dialect_options["postgresql"]["where"] is None
        and len(index.expressions) == len(index.columns)
        and _names(index.columns) == columns
        for index in table.indexes
    )


def _live_rows_only(table: Table, columns: frozenset[str]) -> bool:
    """Whether a partial unique index covers ``columns`` (a soft-delete table's live-rows rule)."""
    return any(index.unique and columns <= _names(index.columns) for index in table.indexes)


def _target_names(fk: ForeignKeyConstraint) -> frozenset[str]:
    """The names of the columns ``fk`` references."""
    return frozenset(element.column.name for element in fk.elements)


def _without_unique_target(table: Table) -> list[tuple[ForeignKeyConstraint, Table]]:
    """The foreign keys of ``table`` to columns with no unique rule over all rows, in order.

    Each with the table it references, sorted by the key's columns. Nearly every key references
    a primary key: it is passed over before the keys are sorted.
    """
    found = []
    for fk in table.foreign_key_constraints:
        referred = _referred_table(fk)
        if referred is not None and not _unique_over_all_rows(referred, _target_names(fk)):
            found.append((fk, referred))
    return sorted(found, key=lambda pair: tuple(pair[0].column_keys))


def _foreign_key_target(table: Table, _settings: Settings) -> Iterator[Violation]:
    for fk, referred in _without_unique_target(table):
        target = _target_names(fk)
        columns = [element.parent for element in fk.elements]
        if allowed(rules.FOREIGN_KEY_TARGET, fk, *columns, table):
            continue
        names = ", ".join(column.name for column in columns)
        listed = ", ".join(sorted(target))
        live_only = _live_rows_only(referred, target)
        why = (
            f"{referred.name}'s unique rule on ({listed}) covers live rows only (WHERE "
            "deleted_at IS NULL)"
            if live_only
            else f"{referred.name} has no unique rule on exactly ({listed})"
        )
        yield Violation(
            rules.FOREIGN_KEY_TARGET,
            f"{table.name}.{names} -> {referred.name}.{listed}",
            f"foreign key to {referred.name} ({listed}), but {why}: PostgreSQL refuses a "
            "foreign key without a unique rule over all rows to reference, and the migration "
            "would fail when it runs.",
            (
                f"reference {referred.name}'s primary key, or keep the rule over every row: "
                f"info=pgkeel.naming.allow({rules.ALL_ROWS_UNIQUE!r}) on it (a deleted row "
                "then keeps its value)"
            )
            if live_only
            else f"reference {referred.name}'s primary key, or declare the unique rule on "
            f"({listed}).",
            _column_opt_out(rules.FOREIGN_KEY_TARGET),
        )


def _timestamps(table: Table, settings: Settings) -> Iterator[Violation]:
    wanted = (settings.timestamps.created, settings.timestamps.updated)
    missing = [name for name in wanted if name not in table.c]
    if not missing or allowed(rules.TIMESTAMPS, table):
        return
    yield Violation(
        rules.TIMESTAMPS,
        table.name,
        f"no {' and no '.join(missing)} column.",
        "use TimestampMixin (or BaseModel): timestamptz columns the database keeps right "
        "with a trigger.",
        _table_opt_out(rules.TIMESTAMPS),
    )


RULES: dict[str, Callable[[Table, Settings], Iterator[Violation]]] = {
    rules.PLURAL_TABLE_NAME: _plural_table_name,
    rules.IDENTIFIER_LENGTH: _identifier_length,
    rules.UUID_PRIMARY_KEY: _uuid_primary_key,
    rules.TIMESTAMPS: _timestamps,
    rules.SNAKE_CASE_COLUMN: _snake_case_column,
    rules.TIMESTAMPTZ: _timestamptz,
    rules.JSONB: _jsonb,
    rules.TENANT_LEADING_COLUMN: _tenant_leading_column,
    rules.TENANT_RLS: _tenant_rls,
    rules.TENANT_FOREIGN_KEY: _tenant_foreign_key,
    rules.FOREIGN_KEY_TARGET: _foreign_key_target,
}
"""The check of each rule id, in the order a report lists them."""


def check_tables(tables: Iterable[Table], settings: Settings = DEFAULT_SETTINGS) -> list[Violation]:
    """Every violation in ``tables`` of every rule ``settings`` does not turn off.

    An unknown rule id in any ``pgkeel_allow`` opt-out is an ``UnknownRuleError`` first.
    """
    checks = [check for rule_id, check in RULES.items() if settings.checks(rule_id)]
    found: list[Violation] = []
    for table in tables:
        check_table_opt_outs(table)
        for check in checks:
            found.extend(check(table, settings))
    return found


def split_by_level(
    violations: Iterable[Violation], settings: Settings
) -> tuple[list[Violation], list[Violation]]:
    """``violations`` as (those that stop autogenerate, those ``settings`` turns into warnings)."""
    items = list(violations)
    warnings = [item for item in items if settings.level(item.rule) == "warn"]
    return [item for item in items if settings.level(item.rule) != "warn"], warnings
