"""Refuse the operations that lose data or rewrite a table, unless the author acknowledged them.

- A dropped column or table loses its values: refused, and when an added column (or a created
  table) of the same type looks like its new name, the refusal gives the rename to write.
- A dropped unique rule (constraint or unique index) that no new unique rule of the table
  replaces lets duplicates in from then on: refused. A rule keyed on a dropped column goes with
  the column (refused as such); one on columns that stay whose predicate or expression uses a
  dropped column is refused by name (``DROP COLUMN`` drops it too), also when autogenerate does
  not see it go (an ``include_object`` that leaves it out): the database says which of the
  table's unique rules use a dropped column. A new rule replaces a dropped one only when it
  enforces at least as much (``dependents.replaces``: a key made of the old key's elements,
  ``tenant_id`` aside, and a predicate no narrower); a rule rebuilt with other options, made
  partial by soft delete or led by ``tenant_id`` is replaced, and pgkeel keeps it (and the
  columns it uses) until its successor is valid.
- A column type change that PostgreSQL makes by rewriting the table (under an ACCESS EXCLUSIVE
  lock for the whole rewrite) is refused with the expand/backfill/swap recipe. Whether a change
  rewrites is asked of PostgreSQL itself (``probe_rewrite``), so binary-coercible changes (a
  longer ``varchar``, ``varchar`` to ``text``, a wider ``numeric``) pass.
- A type change without a rewrite of a column that a valid CHECK constraint of the table reads
  is refused as well: PostgreSQL then checks every row against that check again, scanning the
  whole table under the same ACCESS EXCLUSIVE lock (even from ``varchar(20)`` to
  ``varchar(40)``). The recipe drops the check, changes the type, adds the check back
  ``NOT VALID`` and validates it in a later step. A ``NOT VALID`` check is not checked again,
  and a new type that is a domain with checks already rewrites the table (the probe says so).
- A type change of a column that a view, rule, policy or trigger reads is refused, rewrite or
  not: PostgreSQL refuses it (the probe's copy of the table has none of them); the refusal
  names each, to drop and create again around the change.
- ``-x rename=table.old:new`` writes the rename, then what else the pair changes (type,
  nullability, server default, comment) as an ``alter_column`` that the guards above (and the
  NOT NULL steps) judge like any other.

An acknowledged change gets an ``op.acknowledge(...)`` right before it (see ``acknowledge``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, ops
from psycopg import sql
from sqlalchemy import Column, Enum, UniqueConstraint, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from alembic_extensions.acknowledge import (
    DROP_COLUMN,
    DROP_TABLE,
    DROP_UNIQUE,
    RENAME,
    TABLE_REWRITE,
    TYPE_CHANGE,
    AcknowledgeOp,
    acknowledge_hint,
)
from alembic_extensions.defaults import default_changed
from alembic_extensions.dependents import (
    RuleShape,
    columns_used,
    definition_shape,
    key_columns,
    replaces,
    rule_definition,
    rule_shape,
    rule_text,
    sql_identifiers,
)
from alembic_extensions.ops import (
    CommentOp,
    DropExclusionRuleOp,
    RenameConstraintOp,
    RenameIndexOp,
    RuleBackOnDowngradeOp,
    restore_rule_statement,
)
from alembic_extensions.probes import MIGRATION_TIME_ZONE, rewrites
from alembic_extensions.rebuilds import type_change_outcome
from alembic_extensions.rules import Violation

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from sqlalchemy import Connection, Row
    from sqlalchemy.engine import Dialect

_PROBE_TABLE = "pgkeel_type_probe"
_POSTGRESQL: postgresql.base.PGDialect = postgresql.dialect()  # type: ignore[no-untyped-call]
_NEEDS_USING = "needs a USING cast"


@dataclass(frozen=True)
class ReverseType:
    """What a downgrade writes for a column's type change back (the upgrade's, reversed)."""

    note: MigrateOperation
    """``op.acknowledge(...)`` before the change, or a comment in its place (``keep``)."""
    using: str | None = None
    """The ``USING`` cast the change back needs, when acknowledged."""
    keep: bool = False
    """The downgrade leaves the type the upgrade gave (``-x downgrade_keep_type=``)."""


@dataclass
class LossGuard:
    """What one autogenerate run checks against: the database, and what the author acknowledged."""

    connection: Connection | None
    acknowledged: frozenset[str]
    refused: list[Violation]
    renames: dict[str, dict[str, str]] = field(default_factory=dict)
    """``-x rename=`` answers: ``{table: {old column: new column}}``."""
    backfills: dict[str, str] = field(default_factory=dict)
    """``-x backfill=`` answers: ``{"table.column": SQL giving each old row its value}``."""
    model_checks: frozenset[str] = frozenset()
    """The names of the model's check constraints (a check the model keeps is never dropped)."""
    downgrade_backfills: dict[str, str] = field(default_factory=dict)
    """``-x downgrade_backfill=`` answers: ``{"table.column": SQL}`` for a column made nullable."""
    keep_types: frozenset[str] = frozenset()
    """``-x downgrade_keep_type=`` answers: the columns whose downgrade keeps the new type."""
    reversals: dict[str, ReverseType] = field(default_factory=dict)
    """What the downgrade writes for each type change back, by ``table.column``."""
    not_null_downgrades: dict[str, str | None] = field(default_factory=dict)
    """Each column made nullable, answered: the SQL its NULLs get on the downgrade, or None."""
    cache: dict[str, Any] = field(default_factory=dict)
    """Catalog reads made once per autogenerate run."""

    @property
    def dialect(self) -> Dialect | None:
        """The connection's dialect, to compare types as PostgreSQL spells them."""
        return self.connection.dialect if self.connection is not None else None

    def refuse_unless_acknowledged(self, violation: Violation) -> bool:
        """Record ``violation`` unless acknowledged; whether it was acknowledged."""
        if violation.where in self.acknowledged:
            return True
        self.refused.append(violation)
        return False


def _type_key(column: Column[Any], dialect: Dialect | None) -> str:
    try:
        return str(column.type.compile(dialect=dialect)).upper()
    except Exception:  # noqa: BLE001  # a type this dialect cannot compile matches nothing
        return f"<{column.type!r}>"


def _column_key(column: Column[Any], dialect: Dialect | None) -> tuple[str, str]:
    return _type_key(column, dialect), "NULL" if column.nullable else "NOT NULL"


def _where(schema: str | None, *names: str) -> str:
    return ".".join([*([schema] if schema else []), *names])


def _drop_column_violation(table: str, column: str, renamed_to: str | None) -> Violation:
    where = f"{table}.{column}"
    if renamed_to is not None:
        return Violation(
            RENAME,
            where,
            f"{where} is dropped and {table}.{renamed_to} (same type) is added: this looks "
            f"like a rename, and as generated the migration loses every value of {column}.",
            f"write the rename instead of the drop and add: op.alter_column({table!r}, "
            f"{column!r}, new_column_name={renamed_to!r}) (generate the revision again with "
            f"-x rename={where}:{renamed_to} and pgkeel writes it), or keep the database name "
            f"in the model: mapped_column({column!r}, ...).",
            acknowledge_hint(where),
        )
    return Violation(
        DROP_COLUMN,
        where,
        f"the migration drops column {where} and every value in it.",
        "if the column was renamed in the model, write op.alter_column(table, old, "
        "new_column_name=new) instead (or -x rename=table.old:new); if code still reads it, "
        "deploy the code that stops using it first, then drop it.",
        acknowledge_hint(where),
    )


def _drop_table_violation(table: str, renamed_to: str | None) -> Violation:
    if renamed_to is not None:
        return Violation(
            RENAME,
            table,
            f"table {table} is dropped and table {renamed_to} with the same columns is "
            f"created: this looks like a rename, and as generated the migration loses every "
            f"row of {table}.",
            f"write op.rename_table({table!r}, {renamed_to!r}) in place of the drop_table and "
            "create_table, then rename the table's indexes, constraints and trigger to the new "
            "table's names (ALTER INDEX ... RENAME TO ...; `alembic check` lists any left); "
            f"or keep the database name in the model: __tablename__ = {table!r}.",
            acknowledge_hint(table),
        )
    return Violation(
        DROP_TABLE,
        table,
        f"the migration drops table {table} and every row in it.",
        "if the model was renamed, write op.rename_table(old, new) instead (or keep "
        "__tablename__); if code still reads the table, deploy the code that stops using it "
        "first, then drop it.",
        acknowledge_hint(table),
    )


def _rewrite_violation(where: str, old: str, new: str, reason: str) -> Violation:
    return Violation(
        TABLE_REWRITE,
        where,
        f"changing {where} from {old} to {new} {reason}: PostgreSQL rewrites the whole table "
        "(and its indexes) under an ACCESS EXCLUSIVE lock that blocks every read and write "
        "until it ends.",
        _new_column_recipe("swaps them"),
        acknowledge_hint(where) + ", for a table known to be small",
    )


def _new_column_recipe(swap: str) -> str:
    """The steps that change a column's type on a live table: a new column, filled, swapped.

    ``swap``: what step (3)'s migration does before the swap of the two columns.
    """
    return (
        "change it in steps: (1) a migration adds a new nullable column of the new type, and "
        f"the code writes both; (2) backfill the new column in batches; (3) a migration {swap} "
        "(op.alter_column(..., new_column_name=...) twice, in one transaction), and the code "
        "reads the new one; (4) a later migration drops the old column (acknowledged)."
    )


def _rebuild_violation(where: str, old: str, new: str, rebuilt: list[str]) -> Violation:
    return Violation(
        TABLE_REWRITE,
        where,
        f"changing {where} from {old} to {new} rewrites no row, but PostgreSQL rebuilds "
        f"{', '.join(rebuilt)} (a predicate or an expression reads the column, or its operator "
        "class changes) inside the ALTER TABLE, under an ACCESS EXCLUSIVE lock that blocks "
        "every read and write until the builds end.",
        _new_column_recipe(
            "builds its indexes (CONCURRENTLY, as pgkeel writes them) and swaps the columns"
        ),
        acknowledge_hint(where) + ", for a table known to be small",
    )


def _refused_change_violation(where: str, old: str, new: str, refusal: str) -> Violation:
    return Violation(
        TABLE_REWRITE,
        where,
        f"changing {where} from {old} to {new} fails when the migration runs: PostgreSQL says "
        f"'{refusal}' (asked on an empty copy of the table).",
        "make the change PostgreSQL accepts first: a stored generated column that reads the "
        "column is dropped and added back around the type change (adding it back rewrites "
        "the table: for a big one, a plain column filled in batches instead); a view or rule "
        "that reads it is dropped and created again in the same migration.",
        acknowledge_hint(where) + " once the migration does what PostgreSQL needs",
    )


def _rechecks(checks: list[str]) -> str:
    return f"makes PostgreSQL check every row against {', '.join(checks)} again"


def _check_scan_violation(where: str, old: str, new: str, checks: list[str]) -> Violation:
    relation, _, column = where.rpartition(".")
    schema, _, table = relation.rpartition(".")
    target = repr(table) + (f", schema={schema!r}" if schema else "")
    validate = "; ".join(f"op.validate_constraint({name!r}, {target})" for name in checks)
    return Violation(
        TABLE_REWRITE,
        where,
        f"changing {where} from {old} to {new} rewrites nothing but {_rechecks(checks)} (each "
        f"reads {column}): PostgreSQL scans the whole table under an ACCESS EXCLUSIVE lock "
        "that blocks every read and write until the scan ends.",
        f"in one migration drop the check, change the type and add the check back NOT VALID "
        f"(op.create_check_constraint(..., postgresql_not_valid=True)): each step is brief; "
        f"then validate it in a later step ({validate}), which scans under a SHARE UPDATE "
        "EXCLUSIVE lock that lets reads and writes go on.",
        acknowledge_hint(where) + ", for a table known to be small",
    )


def _acknowledge(rule: str, where: str, reason: str) -> AcknowledgeOp:
    return AcknowledgeOp(rule, where, reason)


def _renames(
    dropped: Iterable[tuple[str, str, str]], added: Iterable[tuple[str, str, str]]
) -> dict[str, str]:
    """Pair dropped and added names of one type: same nullability first, then any."""
    gone, free = list(dropped), list(added)
    pairs: dict[str, str] = {}
    for exact in (True, False):
        for name, key, detail in gone:
            if name in pairs:
                continue
            match = next((i for i in free if i[1] == key and (i[2] == detail or not exact)), None)
            if match is not None:
                pairs[name] = match[0]
                free.remove(match)
    return pairs


class RenameColumnOp(MigrateOperation):
    """``op.alter_column(table, old, new_column_name=new)``, with the rename back as reverse."""

    def __init__(
        self, table: str, old: str, new: str, column: Column[Any], schema: str | None = None
    ) -> None:
        self.table = table
        self.old = old
        self.new = new
        self.column = column
        self.schema = schema

    def alter(self) -> ops.AlterColumnOp:
        """Alembic's operation for the rename, as the migration file writes it."""
        return ops.AlterColumnOp(
            self.table,
            self.old,
            schema=self.schema,
            modify_name=self.new,
            existing_type=self.column.type,
            existing_nullable=self.column.nullable,
        )

    def reverse(self) -> RenameColumnOp:
        """The rename back."""
        return RenameColumnOp(self.table, self.new, self.old, self.column, self.schema)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("rename_column", schema, table, old, new)``."""
        return ("rename_column", self.schema, self.table, self.old, self.new)


def apply_renames(container: ops.ModifyTableOps, renames: dict[str, str]) -> None:
    """Replace each drop + add pair named in ``renames`` (``old -> new``) by one rename.

    What else the pair changes (type, nullability, server default, comment) follows the rename
    as an ``alter_column`` of the renamed column, guarded as any other change of a column.
    """
    drops = {op.column_name: op for op in container.ops if isinstance(op, ops.DropColumnOp)}
    adds = {op.column.name: op for op in container.ops if isinstance(op, ops.AddColumnOp)}
    for old, new in renames.items():
        if old not in drops or new not in adds:
            continue
        before, after = drops[old].to_column(), adds[new].column
        rename = RenameColumnOp(container.table_name, old, new, before, container.schema)
        where = _where(container.schema, container.table_name, old)
        reason = f"renamed to {new}: its values are kept"
        position = container.ops.index(drops[old])
        changes = _renamed_column_changes(container, new, before, after)
        container.ops[position : position + 1] = [
            _acknowledge(RENAME, where, reason),
            rename,
            *changes,
        ]
        container.ops.remove(adds[new])
    if renames:
        _follow_renamed_rules(container, renames)
        _follow_renamed_constraints(container, renames)


def _renamed_column_changes(
    container: ops.ModifyTableOps, name: str, before: Column[Any], after: Column[Any]
) -> list[ops.AlterColumnOp]:
    """The ``alter_column`` of ``name``, renamed, from ``before`` (the database's) to ``after``.

    Empty when the rename is all that changes.
    """
    changes: dict[str, Any] = {}
    if _type_key(before, _POSTGRESQL) != _type_key(after, _POSTGRESQL):
        changes["modify_type"] = after.type
    if before.nullable != after.nullable:
        changes["modify_nullable"] = after.nullable
    if default_changed(None, _POSTGRESQL, before, after):
        changes["modify_server_default"] = after.server_default
    if (before.comment or None) != (after.comment or None):
        changes["modify_comment"] = after.comment
    if not changes:
        return []
    alter = ops.AlterColumnOp(
        container.table_name,
        name,
        schema=container.schema,
        existing_type=before.type,
        existing_nullable=before.nullable,
        existing_server_default=before.server_default,
        existing_comment=before.comment,
        **changes,
    )
    return [alter]


_DROPS = (ops.DropConstraintOp, ops.DropIndexOp)
_ADDS = (ops.AddConstraintOp, ops.CreateIndexOp)
_UniqueRule = tuple[str, tuple[str, ...], bool, str | None, tuple[Any, ...]]
"""(name, key elements, whether an index rather than a constraint, predicate, other options)."""


def _unique_rule(op: MigrateOperation, renames: Mapping[str, str]) -> _UniqueRule | None:
    """A unique rule that ``op`` drops or adds, its columns renamed by ``renames``.

    Expressions and predicates are compared in the canonical spelling: PostgreSQL keeps an
    index's ``lower(code)`` or ``WHERE deleted_at IS NULL`` through a rename of its columns.
    """
    rule: Any
    if isinstance(op, ops.DropConstraintOp | ops.AddConstraintOp):
        rule = op.to_constraint()
        if not isinstance(rule, UniqueConstraint):
            return None
        is_index, elements = False, list(rule.columns)
    elif isinstance(op, ops.DropIndexOp | ops.CreateIndexOp):
        rule = op.to_index()
        is_index, elements = True, list(rule.expressions)
    else:
        return None
    options = (
        dict(rule.dialect_options["postgresql"]) if "postgresql" in rule.dialect_options else {}
    )
    keys = [rule_text(element, renames) for element in elements]
    where = options.get("where")
    predicate = None if where is None else rule_text(where, renames)
    if not isinstance(rule.name, str) or None in keys or (where is not None and predicate is None):
        return None
    other = tuple(
        sorted((key, repr(value)) for key, value in options.items() if key != "where" and value)
    )
    unique = bool(getattr(rule, "unique", True))
    return (rule.name, tuple(str(key) for key in keys), is_index, predicate, (unique, *other))


def _follow_renamed_rules(container: ops.ModifyTableOps, renames: dict[str, str]) -> None:
    """A unique rule or index dropped and added again only because its column was renamed.

    PostgreSQL keeps the rule on the renamed column, expressions and predicate included; only
    its name (from the naming convention) differs. ``ALTER INDEX ... RENAME`` (which renames the
    constraint it backs) replaces the rebuild of the rule and the drop of the old one, so a
    rename drops no rule and asks for no acknowledgement.
    """
    _follow_renames(
        container,
        [(op, rule[0], rule[1:]) for op in container.ops if (rule := _drop_rule(op, renames))],
        [(op, rule[0], rule[1:]) for op in container.ops if (rule := _add_rule(op))],
        lambda old, new: RenameIndexOp(old, new, container.schema),
    )


def _drop_rule(op: MigrateOperation, renames: Mapping[str, str]) -> _UniqueRule | None:
    return _unique_rule(op, renames) if isinstance(op, _DROPS) else None


def _add_rule(op: MigrateOperation) -> _UniqueRule | None:
    return _unique_rule(op, {}) if isinstance(op, _ADDS) else None


_Named = tuple[MigrateOperation, str, Any]
"""An operation, the name of what it drops or adds, and what that says (its name aside)."""


def _follow_renames(
    container: ops.ModifyTableOps,
    dropped: Sequence[_Named],
    added: Sequence[_Named],
    rename: Callable[[str, str], MigrateOperation],
) -> None:
    """Each drop and add that say the same thing become nothing, or ``rename(old, new)``."""
    for drop, old_name, old in dropped:
        for add, new_name, new in added:
            if new != old or add not in container.ops:
                continue
            position = container.ops.index(drop)
            renamed = [rename(old_name, new_name)] if new_name and new_name != old_name else []
            container.ops[position : position + 1] = renamed
            container.ops.remove(add)
            break


def _foreign_key_shape(add: ops.CreateForeignKeyOp, renames: Mapping[str, str]) -> tuple[Any, ...]:
    """What a foreign key says, its own columns renamed: its name aside, the same key or not."""
    options = tuple(sorted((key, repr(value)) for key, value in add.kw.items() if value))
    local = tuple(renames.get(str(column), str(column)) for column in add.local_cols)
    return (local, add.referent_table, tuple(add.remote_cols), options)


def _constraint_shape(op: MigrateOperation, renames: Mapping[str, str]) -> tuple[Any, ...] | None:
    """A check's or a foreign key's definition, renamed columns put in; None for another op."""
    if isinstance(op, ops.CreateForeignKeyOp):
        return ("foreignkey", *_foreign_key_shape(op, renames))
    if isinstance(op, ops.CreateCheckConstraintOp):
        text_ = rule_text(op.condition, renames)
        return None if text_ is None else ("check", text_)
    return None


def _follow_renamed_constraints(container: ops.ModifyTableOps, renames: dict[str, str]) -> None:
    """A check or foreign key dropped and added again only because its column was renamed.

    PostgreSQL keeps both on the renamed column (it stores the column, not its name); the drop
    and the add (which would name the new column before the rename) give way to nothing, or to
    ``ALTER TABLE ... RENAME CONSTRAINT`` when the naming convention gives it a new name.
    """
    dropped = [
        (op, str(op.constraint_name), shape)
        for op in container.ops
        if isinstance(op, ops.DropConstraintOp)
        and op._reverse is not None
        and (shape := _constraint_shape(op._reverse, renames)) is not None
    ]
    added = [
        (op, str(getattr(op, "constraint_name", None) or ""), shape)
        for op in container.ops
        if (shape := _constraint_shape(op, {})) is not None
    ]
    _follow_renames(
        container,
        dropped,
        added,
        lambda old, new: RenameConstraintOp(container.table_name, old, new, container.schema),
    )


def _guard_columns(container: ops.ModifyTableOps, guard: LossGuard) -> set[str]:
    """Refuse the dropped columns; return the added columns that pair with one (a rename)."""
    dialect = guard.dialect
    drops = [op for op in container.ops if isinstance(op, ops.DropColumnOp)]
    adds = [op for op in container.ops if isinstance(op, ops.AddColumnOp)]
    pairs = _renames(
        ((op.column_name, *_column_key(op.to_column(), dialect)) for op in drops),
        ((op.column.name, *_column_key(op.column, dialect)) for op in adds),
    )
    table = _where(container.schema, container.table_name)
    for op in drops:
        violation = _drop_column_violation(table, op.column_name, pairs.get(op.column_name))
        if guard.refuse_unless_acknowledged(violation):
            position = container.ops.index(op)
            reason = "acknowledged: its values are dropped on purpose"
            container.ops.insert(position, _acknowledge(DROP_COLUMN, violation.where, reason))
    return set(pairs.values())


def _names(columns: Iterable[Any]) -> set[str]:
    """Column names (an expression's text where an index has one)."""
    return {str(getattr(column, "name", column)) for column in columns}


def _rule_columns(op: ops.MigrateOperation) -> tuple[str, set[str]] | None:
    """``(name, column names)`` of the unique rule ``op`` drops, or None when it drops another."""
    reverse = getattr(op, "_reverse", None)
    if isinstance(op, ops.DropConstraintOp) and op.constraint_type == "unique":
        columns = getattr(reverse, "columns", None) or ()
        return str(op.constraint_name), _names(columns)
    if (
        isinstance(op, ops.DropIndexOp)
        and isinstance(reverse, ops.CreateIndexOp)
        and reverse.unique
    ):
        return str(op.index_name), _names(reverse.columns)
    return None


def _new_unique_rules(container: ops.ModifyTableOps) -> list[RuleShape]:
    """What each unique rule the container creates enforces (one it cannot read: nothing)."""
    creates = [
        op
        for op in container.ops
        if isinstance(op, ops.CreateUniqueConstraintOp)
        or (isinstance(op, ops.CreateIndexOp) and op.unique)
    ]
    return [shape for op in creates if (shape := definition_shape(op)) is not None]


def _old_shape(op: ops.MigrateOperation, renames: Mapping[str, str]) -> RuleShape | None:
    """What the unique rule ``op`` drops enforced, its columns renamed by ``-x rename``."""
    definition = rule_definition(op)
    return None if definition is None else definition_shape(definition, renames)


def _replaced(old: RuleShape | None, new: list[RuleShape]) -> bool:
    """Whether a new unique rule enforces at least what ``old`` did (see ``replaces``)."""
    return old is not None and any(replaces(rule, old) for rule in new)


def _lesser_rules(old: RuleShape | None, new: list[RuleShape]) -> str:
    """The words of a refusal for the new rules on the same name or key that enforce less."""
    if old is None:
        return ""
    lesser = sorted({rule.name for rule in new if rule.name == old.name or rule.key & old.key})
    if not lesser:
        return ""
    return (
        f" {', '.join(lesser)} does not replace it: a new rule replaces an old one only when "
        "its key is made of the old key's elements (tenant_id aside) and its predicate is none, "
        "the old one, or deleted_at IS NULL on a soft-delete table."
    )


def _dropped_uses(columns: set[str]) -> str:
    """The words of a refusal for a rule whose predicate or expression uses dropped columns."""
    if not columns:
        return ""
    listed = ", ".join(sorted(columns))
    return (
        f" It uses column {listed}, which the migration drops (PostgreSQL drops the rule with "
        "it): build the new unique index first, then drop the column."
    )


def _refused_uses(columns: set[str]) -> str:
    """The words of a refusal for an exclusion rule whose predicate uses dropped columns."""
    listed = ", ".join(sorted(columns))
    return (
        f" It uses column {listed}, which the migration drops: PostgreSQL refuses that drop "
        "while the rule exists, so the migration as generated would fail."
    )


def _drop_unique_violation(  # noqa: PLR0913  # what the refusal says
    table: str,
    name: str,
    columns: set[str],
    dropped_uses: set[str],
    *,
    exclusion: bool = False,
    lesser: str = "",
) -> Violation:
    where = f"{table}.{name}"
    listed = ", ".join(sorted(columns)) or "an expression"
    kind, breaches = ("exclusion", "conflicting rows") if exclusion else ("unique", "duplicates")
    return Violation(
        DROP_UNIQUE,
        where,
        f"the migration drops {kind} rule {name} of {table} ({listed}) and no new {kind} rule "
        f"replaces it: from then on {breaches} can be written, and the rule cannot come back "
        f"once they are.{lesser}{(_refused_uses if exclusion else _dropped_uses)(dropped_uses)}",
        _EXCLUSION_FIX if exclusion else _UNIQUE_FIX,
        acknowledge_hint(where),
    )


_UNIQUE_FIX = (
    "if the model lost the rule by mistake (a removed unique=True, UniqueConstraint or "
    "Index(..., unique=True)), put it back; if the rule changes, declare the new one in the "
    "same revision and pgkeel keeps the old one (and the columns it uses) until the new one is "
    "valid."
)
_EXCLUSION_FIX = (
    "Alembic does not compare exclusion constraints: acknowledged, the migration drops the "
    "rule before the column (op.drop_constraint); if a rule should stay, add the new one after "
    "the column drop yourself (op.create_exclude_constraint, with a predicate on the columns "
    "that stay), and bring the old one back in the downgrade."
)


def _goes_with_column(op: ops.MigrateOperation, dropped: set[str]) -> bool:
    """Whether the rule ``op`` drops is keyed on a dropped column (its drop is refused as such)."""
    definition = rule_definition(op)
    return definition is not None and bool(key_columns(definition) & dropped)


def _guard_unique_rules(container: ops.ModifyTableOps, guard: LossGuard) -> None:
    """Refuse the unique rules the container drops with nothing in their place.

    A rule whose key is made of a dropped column goes with it (the column drop is refused); a
    rule that only names one in its predicate or an expression is a rule on the columns that
    stay, and is refused unless replaced.
    """
    dropped_columns = {op.column_name for op in container.ops if isinstance(op, ops.DropColumnOp)}
    new = _new_unique_rules(container)
    table = _where(container.schema, container.table_name)
    renames = guard.renames.get(table, {})
    for op in list(container.ops):
        rule = _rule_columns(op)
        if rule is None:
            continue
        name, columns = rule
        old = _old_shape(op, renames)
        if _goes_with_column(op, dropped_columns) or _replaced(old, new):
            continue
        definition = rule_definition(op)
        uses = columns_used(definition) & dropped_columns if definition is not None else set()
        lesser = _lesser_rules(old, new)
        violation = _drop_unique_violation(table, name, columns, uses, lesser=lesser)
        if guard.refuse_unless_acknowledged(violation):
            reason = "acknowledged: the rule is dropped on purpose"
            container.ops.insert(
                container.ops.index(op), _acknowledge(DROP_UNIQUE, violation.where, reason)
            )


_UNIQUE_RULES_USING = text(
    "SELECT i.relname AS name,"
    " ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)"
    "  FROM generate_series(1, x.indnkeyatts) AS k) AS key_elements,"
    " ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = x.indrelid"
    "  AND (a.attnum = ANY (x.indkey) OR a.attnum IN (SELECT d.refobjsubid FROM pg_depend d"
    "   WHERE d.classid = 'pg_class'::regclass AND d.objid = x.indexrelid"
    "   AND d.refclassid = 'pg_class'::regclass AND d.refobjid = x.indrelid))) AS used"
    " , c.contype = 'x' AS exclusion, pg_get_constraintdef(c.oid) AS constraint_definition,"
    " pg_get_expr(x.indpred, x.indrelid, true) AS predicate,"
    " pg_get_indexdef(x.indexrelid) AS index_definition"
    " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
    " LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('u', 'x')"
    " WHERE x.indrelid = to_regclass(:relation) AND NOT x.indisprimary"
    " AND (x.indisunique OR x.indisexclusion)"
    " ORDER BY i.relname"
)
"""Each unique index of a table (those behind unique constraints too) and each index behind an
exclusion constraint (``EXCLUDE USING gist (during WITH &&)``, a rule Alembic does not compare):
its name, the text of each key element (a column or an expression), every column it uses,
predicate and ``INCLUDE`` columns with them (PostgreSQL records each as a dependency of the
index), whether it is an exclusion rule, its definitions (the constraint's, NULL for a plain
unique index, and the index's) to bring it back in the downgrade, and its predicate (NULL when
it covers every row) to tell whether a new rule replaces it."""


def _rules_in_database(guard: LossGuard, schema: str | None, table: str) -> list[Row[Any]]:
    """The table's unique rules as the database holds them (``_UNIQUE_RULES_USING``' rows)."""
    assert guard.connection is not None  # noqa: S101  # the caller asks only with a connection
    relation = sql.Identifier(*([schema] if schema else []), table).as_string()
    return list(guard.connection.execute(_UNIQUE_RULES_USING, {"relation": relation}))


def _names_in_ops(container: ops.ModifyTableOps) -> set[str]:
    """The names of the indexes and constraints the container's operations touch."""
    names: set[str] = set()
    for op in container.ops:
        inner = getattr(op, "drop", op)
        for attribute in ("index_name", "constraint_name"):
            name = getattr(inner, attribute, None)
            if isinstance(name, str):
                names.add(name)
    return names


def _guard_rules_out_of_view(container: ops.ModifyTableOps, guard: LossGuard) -> None:
    """Refuse a column drop that takes with it a unique rule autogenerate did not see go.

    An ``include_object`` that leaves an index out (or a rule Alembic does not reflect) hides
    its drop from the operations, but PostgreSQL drops it all the same with a column its
    predicate, an expression or an ``INCLUDE`` uses. The database says which rules use the
    dropped columns; those whose key is made of one go with the column (refused as such).
    """
    dropped = {op.column_name for op in container.ops if isinstance(op, ops.DropColumnOp)}
    if not dropped or guard.connection is None:
        return
    seen, new = _names_in_ops(container), _new_unique_rules(container)
    table = _where(container.schema, container.table_name)
    for row in _rules_in_database(guard, container.schema, container.table_name):
        used = set(row.used)
        key = set().union(*(sql_identifiers(element) for element in row.key_elements)) & used
        if row.name in seen or not used & dropped or key & dropped:
            continue
        old = None if row.exclusion else _row_shape(row, guard.renames.get(table, {}))
        if _replaced(old, new):
            continue
        violation = _drop_unique_violation(
            table,
            row.name,
            key,
            used & dropped,
            exclusion=row.exclusion,
            lesser=_lesser_rules(old, new),
        )
        if guard.refuse_unless_acknowledged(violation):
            first_drop = next(op for op in container.ops if isinstance(op, ops.DropColumnOp))
            reason = "acknowledged: the rule is dropped with the column on purpose"
            at = container.ops.index(first_drop)
            container.ops[at:at] = [
                _acknowledge(DROP_UNIQUE, violation.where, reason),
                _dropped_rule(container, row),
            ]


def _row_shape(row: Row[Any], renames: Mapping[str, str]) -> RuleShape | None:
    """What a unique rule the database holds enforces (``_UNIQUE_RULES_USING``' row)."""
    return rule_shape(
        row.name,
        row.key_elements,
        row.predicate,
        nulls_not_distinct="NULLS NOT DISTINCT" in row.index_definition,
        renames=renames,
    )


def _dropped_rule(container: ops.ModifyTableOps, row: Row[Any]) -> MigrateOperation:
    """The drop of a rule autogenerate did not see, before the column drop that takes it.

    PostgreSQL drops a unique rule with the column (nothing to run, the rule back in the
    downgrade); it refuses to drop a column an exclusion rule uses, so that one is dropped first.
    """
    schema, table = container.schema, container.table_name
    restore = restore_rule_statement(
        schema, table, row.name, row.constraint_definition, row.index_definition
    )
    if row.exclusion:
        return DropExclusionRuleOp(row.name, table, restore, schema)
    return RuleBackOnDowngradeOp(restore)


def _table_key(
    op: ops.DropTableOp | ops.CreateTableOp, dialect: Dialect | None
) -> frozenset[tuple[str, str]]:
    table = op.to_table()
    return frozenset((column.name, _type_key(column, dialect)) for column in table.columns)


def _table_pair_key(op: ops.DropTableOp | ops.CreateTableOp, guard: LossGuard) -> str:
    return str(sorted(_table_key(op, guard.dialect)))


def _moved_table_violation(where: str, moved_to: str, schema: str | None) -> Violation:
    """The refusal of a model moved to another schema: a drop and a create as generated."""
    target = sql.Identifier(schema or "public").as_string()
    old = sql.Identifier(*where.split(".")).as_string()
    move = f"ALTER TABLE {old} SET SCHEMA {target}"
    return Violation(
        RENAME,
        where,
        f"table {where} is dropped and {moved_to} with the same columns is created: the model "
        "moved to another schema, and as generated the migration loses every row of "
        f"{where}.",
        f"move the table instead of the drop_table and create_table: op.execute({move!r}) "
        "(a brief lock, no copy: its indexes, constraints, triggers and policies move with "
        "it), or keep the schema in the model.",
        acknowledge_hint(where),
    )


def _guard_tables(upgrade_ops: ops.UpgradeOps, guard: LossGuard) -> None:
    drops = [op for op in upgrade_ops.ops if isinstance(op, ops.DropTableOp)]
    creates = [op for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)]
    pairs = _renames(
        ((_where(op.schema, op.table_name), _table_pair_key(op, guard), "") for op in drops),
        ((_where(op.schema, op.table_name), _table_pair_key(op, guard), "") for op in creates),
    )
    schemas = {_where(op.schema, op.table_name): op.schema for op in creates}
    for op in drops:
        where = _where(op.schema, op.table_name)
        moved_to = pairs.get(where)
        if moved_to is not None and moved_to.rpartition(".")[2] == op.table_name:
            violation = _moved_table_violation(where, moved_to, schemas[moved_to])
        else:
            violation = _drop_table_violation(where, moved_to)
        if guard.refuse_unless_acknowledged(violation):
            reason = "acknowledged: its rows are dropped on purpose"
            position = upgrade_ops.ops.index(op)
            upgrade_ops.ops.insert(position, _acknowledge(DROP_TABLE, where, reason))


def _column_type(connection: Connection, schema: str | None, table: str, column: str) -> str:
    """The column's type as PostgreSQL writes it (``character varying(50)``, ``numeric(10,2)``)."""
    query = text(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass(:relation) AND a.attname = :column"
        " AND NOT a.attisdropped"
    )
    relation = sql.Identifier(*([schema] if schema else []), table).as_string()
    return str(connection.execute(query, {"relation": relation, "column": column}).scalar_one())


def checks_reading(
    connection: Connection, schema: str | None, table: str, column: str
) -> list[str]:
    """The valid CHECK constraints of the table that read ``column``, by name.

    PostgreSQL checks every row against each of them again when the column's type changes,
    rewrite or not; a ``NOT VALID`` check is added back as it was, unchecked.
    """
    query = text(
        "SELECT c.conname FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
        " WHERE c.conrelid = to_regclass(:relation) AND c.contype = 'c' AND c.convalidated"
        " AND a.attname = :column ORDER BY c.conname"
    )
    relation = sql.Identifier(*([schema] if schema else []), table).as_string()
    found = connection.execute(query, {"relation": relation, "column": column}).scalars()
    return [str(name) for name in found]


def _type_sql(type_text: str) -> sql.SQL:
    # A type as PostgreSQL (format_type) or SQLAlchemy's compiler spells it: SQL, not a name.
    return sql.SQL(type_text)


def probe_rewrite(connection: Connection, old: str, new: str) -> str | None:
    """Whether PostgreSQL rewrites a table to change a column from ``old`` to ``new``.

    Asked of PostgreSQL itself: the change is made on an empty temporary table in a savepoint
    rolled back at once, and a new ``relfilenode`` means a rewrite. ``None`` when there is no
    rewrite, else why (a rewrite, or a cast PostgreSQL cannot make without ``USING``).
    """
    probe = sql.Identifier(_PROBE_TABLE)
    create = sql.SQL("CREATE TEMPORARY TABLE {} (value {})").format(probe, _type_sql(old))
    alter = sql.SQL("ALTER TABLE {} ALTER COLUMN value TYPE {}").format(probe, _type_sql(new))
    try:
        rewritten = rewrites(connection, create.as_string(), alter.as_string(), _PROBE_TABLE)
    except DBAPIError as exc:
        first_line = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        return f"{_NEEDS_USING} ({first_line})"
    return "rewrites the table" if rewritten else None


class AlterColumnUsingOp(MigrateOperation):
    """Alembic's ``alter_column`` with the ``USING`` cast a type change needs (rendered too)."""

    def __init__(
        self, alter: ops.AlterColumnOp, using: str, reverse_using: str | None = None
    ) -> None:
        self.alter = alter
        self.using = using
        self.reverse_using = reverse_using

    def reverse(self) -> ops.AlterColumnOp | AlterColumnUsingOp:
        """The type back: by PostgreSQL's assignment cast, or by ``reverse_using`` when given."""
        if self.reverse_using is None:
            return self.alter.reverse()
        return AlterColumnUsingOp(self.alter.reverse(), self.reverse_using, self.using)

    def to_diff_tuple(self) -> Any:  # noqa: ANN401  # Alembic's diff tuples
        """The type change's diff."""
        return self.alter.to_diff_tuple()


def _database_name(container: ops.ModifyTableOps, column: str) -> str:
    """The name ``column`` has in the database: its old one when the migration renames it."""
    renamed = (
        op.old
        for op in container.ops
        if isinstance(op, RenameColumnOp) and op.new == column and op.schema == container.schema
    )
    return next(renamed, column)


def _guard_type(
    container: ops.ModifyTableOps, op: ops.AlterColumnOp, guard: LossGuard
) -> list[ops.MigrateOperation]:
    """The type change, after an acknowledgement when it may go (else refused)."""
    if op.modify_type is None or guard.connection is None:
        return [op]
    column = _database_name(container, op.column_name)
    old = _column_type(guard.connection, container.schema, container.table_name, column)
    new = str(op.modify_type.compile(dialect=guard.dialect))
    guarded = _guard_forward(container, op, guard, (old, new))
    _guard_reverse(container, op, guard, (old, new))
    return guarded


def _guard_forward(
    container: ops.ModifyTableOps,
    op: ops.AlterColumnOp,
    guard: LossGuard,
    types: tuple[str, str],
) -> list[ops.MigrateOperation]:
    """The upgrade's type change, after an acknowledgement when it may go (else refused)."""
    assert guard.connection is not None  # noqa: S101  # _guard_type asks only with one
    where = _where(container.schema, container.table_name, op.column_name)
    column = _database_name(container, op.column_name)
    old, new = types
    readers = readers_of(guard.connection, container.schema, container.table_name, column)
    if readers:
        if not guard.refuse_unless_acknowledged(_readers_violation(where, old, new, readers)):
            return [op]
        note = f"the migration drops and creates again {', '.join(readers)}: acknowledged"
        acknowledged = _acknowledge(TABLE_REWRITE, where, note)
        return [acknowledged, *_guard_probed(container, op, guard, (old, new))]
    return _guard_probed(container, op, guard, (old, new))


def _guard_probed(
    container: ops.ModifyTableOps,
    op: ops.AlterColumnOp,
    guard: LossGuard,
    types: tuple[str, str],
) -> list[ops.MigrateOperation]:
    """The type change as the probes judge it: a rewrite, rebuilt indexes, a check scan."""
    assert guard.connection is not None  # noqa: S101  # _guard_type asks only with one
    where = _where(container.schema, container.table_name, op.column_name)
    old, new = types
    reason = probe_rewrite(guard.connection, old, new)
    if reason is None:
        rebuilt = _guard_rebuilds(container, op, guard, (old, new))
        return (
            rebuilt if rebuilt is not None else _guard_check_scan(container, op, guard, (old, new))
        )
    if not guard.refuse_unless_acknowledged(_rewrite_violation(where, old, new, reason)):
        return [op]
    note = f"{old} to {new} {reason}: acknowledged"
    acknowledged = _acknowledge(TABLE_REWRITE, where, note)
    if reason.startswith(_NEEDS_USING):
        quoted = sql.Identifier(op.column_name).as_string()
        if _enum_involved(op):  # PostgreSQL casts one enum to another only through text
            back = f"{quoted}::text::{old}"
            return [acknowledged, AlterColumnUsingOp(op, f"{quoted}::text::{new}", back)]
        return [acknowledged, AlterColumnUsingOp(op, f"{quoted}::{new}")]
    return [acknowledged, op]


_READERS = text(
    "SELECT DISTINCT CASE"
    " WHEN d.classid = 'pg_policy'::regclass THEN 'policy ' || quote_ident(p.polname)"
    " WHEN d.classid = 'pg_trigger'::regclass THEN 'trigger ' || quote_ident(t.tgname)"
    " WHEN r.rulename = '_RETURN' THEN"
    "  CASE v.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END || r.ev_class::regclass"
    " ELSE 'rule ' || quote_ident(r.rulename) || ' on ' || r.ev_class::regclass END AS reader"
    " FROM pg_depend d"
    " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
    " LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid"
    " LEFT JOIN pg_class v ON v.oid = r.ev_class"
    " LEFT JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND p.oid = d.objid"
    " LEFT JOIN pg_trigger t ON d.classid = 'pg_trigger'::regclass AND t.oid = d.objid"
    " WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass(:relation)"
    " AND a.attname = :column AND (r.oid IS NOT NULL OR p.oid IS NOT NULL"
    "  OR (t.oid IS NOT NULL AND NOT t.tgisinternal))"
    " ORDER BY 1"
)
"""Each view, materialized view, rule, policy and trigger that reads a column (``pg_depend``):
PostgreSQL refuses to change the type of a column any of them uses."""


def readers_of(connection: Connection, schema: str | None, table: str, column: str) -> list[str]:
    """The views, rules, policies and triggers that read ``column`` (``view public.x``...)."""
    relation = sql.Identifier(*([schema] if schema else []), table).as_string()
    found = connection.execute(_READERS, {"relation": relation, "column": column}).scalars()
    return [str(reader) for reader in found]


def _readers_violation(where: str, old: str, new: str, readers: list[str]) -> Violation:
    listed = ", ".join(readers)
    return Violation(
        TABLE_REWRITE,
        where,
        f"changing {where} from {old} to {new} fails when the migration runs: {listed} "
        "reads the column, and PostgreSQL refuses to change the type of a column that a view, "
        "rule, policy or trigger uses.",
        "generate the revision again acknowledged, then edit it: in the same migration, "
        f"drop {listed} before the alter_column and create it again after it (op.execute; "
        "the definition from pg_get_viewdef for a view, pg_get_ruledef for a rule, "
        "pg_policies for a policy, pg_get_triggerdef for a trigger), and the other way round "
        "in the downgrade.",
        acknowledge_hint(where) + " once the migration drops and creates them again",
    )


def _enum_involved(op: ops.AlterColumnOp) -> bool:
    """Whether the type change is from or to a native enum type."""
    types = (op.modify_type, op.existing_type)
    return any(isinstance(type_, Enum) and type_.native_enum for type_ in types)


def _guard_rebuilds(
    container: ops.ModifyTableOps,
    op: ops.AlterColumnOp,
    guard: LossGuard,
    types: tuple[str, str],
) -> list[ops.MigrateOperation] | None:
    """A type change without a rewrite that rebuilds indexes, or that PostgreSQL refuses.

    None when it does neither (the check scan is asked next).
    """
    if guard.connection is None:  # _guard_type asks only with one
        return None
    old, new = types
    table, column = container.table_name, _database_name(container, op.column_name)
    outcome = type_change_outcome(guard.connection, container.schema, table, column, new)
    if not outcome.rebuilt and outcome.refused is None:
        return None
    where = _where(container.schema, table, op.column_name)
    if outcome.refused is not None:
        violation = _refused_change_violation(where, old, new, outcome.refused)
        note = f"{old} to {new}, which PostgreSQL refuses as the table stands: acknowledged"
    else:
        violation = _rebuild_violation(where, old, new, outcome.rebuilt)
        note = f"{old} to {new} rebuilds {', '.join(outcome.rebuilt)}: acknowledged"
    if not guard.refuse_unless_acknowledged(violation):
        return [op]
    return [_acknowledge(TABLE_REWRITE, where, note), op]


def _guard_check_scan(
    container: ops.ModifyTableOps,
    op: ops.AlterColumnOp,
    guard: LossGuard,
    types: tuple[str, str],
) -> list[ops.MigrateOperation]:
    """A type change without a rewrite: refused when a check makes PostgreSQL scan the table."""
    if guard.connection is None:  # _guard_type asks only with one
        return [op]
    where = _where(container.schema, container.table_name, op.column_name)
    old, new = types
    table = container.table_name
    column = _database_name(container, op.column_name)
    checks = checks_reading(guard.connection, container.schema, table, column)
    if not checks:
        note = f"{old} to {new}: no table rewrite (checked by pgkeel){_zone_note(old, new)}"
        return [_acknowledge(TYPE_CHANGE, where, note), op]
    if not guard.refuse_unless_acknowledged(_check_scan_violation(where, old, new, checks)):
        return [op]
    note = f"{old} to {new} {_rechecks(checks)}: acknowledged"
    return [_acknowledge(TABLE_REWRITE, where, note), op]


def _zone_note(old: str, new: str) -> str:
    """What a change between ``timestamp`` and ``timestamptz`` does to the stored values."""
    zoned = ["with time zone" in type_.lower() for type_ in (old, new)]
    if not all("timestamp" in type_.lower() for type_ in (old, new)) or zoned[0] == zoned[1]:
        return ""
    return f"; the values are read as {MIGRATION_TIME_ZONE}, the time zone every migration runs in"


def _reverse_reason(
    guard: LossGuard, container: ops.ModifyTableOps, column: str, types: tuple[str, str]
) -> str | None:
    """What changing ``column`` back from ``new`` to ``old`` does to the table; None: nothing.

    Asked as for the upgrade: the rewrite probe, then a copy of the table with the column
    already of the new type for the indexes it rebuilds, then the checks it scans for.
    """
    assert guard.connection is not None  # noqa: S101  # _guard_type asks only with one
    old, new = types
    reason = probe_rewrite(guard.connection, new, old)
    if reason is not None:
        return reason
    schema, table = container.schema, container.table_name
    outcome = type_change_outcome(guard.connection, schema, table, column, old, from_type=new)
    if outcome.refused is not None:
        return f"fails: PostgreSQL says '{outcome.refused}'"
    if outcome.rebuilt:
        return f"rebuilds {', '.join(outcome.rebuilt)}"
    checks = checks_reading(guard.connection, schema, table, column)
    return _rechecks(checks) if checks else None


def _guard_reverse(
    container: ops.ModifyTableOps,
    op: ops.AlterColumnOp,
    guard: LossGuard,
    types: tuple[str, str],
) -> None:
    """Judge the downgrade's change back (``new`` to ``old``) as the upgrade's; record the plan.

    A change back that rewrites, needs ``USING``, rebuilds indexes or scans for checks is not
    written: the downgrade keeps the new type, with a comment that says why (a widened
    ``varchar`` stays wide, and no value can be cut). Acknowledged (``-x acknowledge=``, the
    answer that also covers the upgrade's own refusal), it changes the type back.
    """
    where = _where(container.schema, container.table_name, op.column_name)
    old, new = types
    reason = _reverse_reason(guard, container, _database_name(container, op.column_name), types)
    if reason is None:
        note = f"downgrade: {new} to {old}: no table rewrite (checked by pgkeel)"
        guard.reversals[where] = ReverseType(_acknowledge(TYPE_CHANGE, where, note))
        return
    if where in guard.keep_types or where not in guard.acknowledged:
        comment = (
            f"{where} keeps {new} on this downgrade: changing it back to {old} {reason}. "
            "Every value is kept; `alembic check` at the older revision reports the type. To "
            f"change it back all the same, generate the revision with -x acknowledge={where}."
        )
        guard.reversals[where] = ReverseType(CommentOp(comment), keep=True)
        return
    note = f"downgrade: {new} to {old} {reason}: acknowledged"
    using = None
    if reason.startswith(_NEEDS_USING):
        quoted = sql.Identifier(op.column_name).as_string()
        using = f"{quoted}::text::{old}" if _enum_involved(op) else f"{quoted}::{old}"
    guard.reversals[where] = ReverseType(_acknowledge(TABLE_REWRITE, where, note), using)


def reverse_type_ops(
    op: ops.AlterColumnOp | AlterColumnUsingOp, plan: ReverseType | None
) -> list[MigrateOperation]:
    """A downgrade's type change back as judged at autogenerate (``plan``): noted, cast, kept."""
    if plan is None:
        return [op]
    if not plan.keep:
        if plan.using is not None and isinstance(op, ops.AlterColumnOp):
            return [plan.note, AlterColumnUsingOp(op, plan.using)]
        return [plan.note, op]
    alter = op.alter if isinstance(op, AlterColumnUsingOp) else op
    alter.modify_type = None
    return [plan.note, alter] if alter.has_changes() else [plan.note]


def _guard_types(container: ops.ModifyTableOps, guard: LossGuard) -> None:
    container.ops = [
        guarded
        for op in container.ops
        for guarded in (
            _guard_type(container, op, guard) if isinstance(op, ops.AlterColumnOp) else [op]
        )
    ]


def guard_losses(upgrade_ops: ops.UpgradeOps, guard: LossGuard, dropped: set[Any]) -> set[Any]:
    """Refuse (or acknowledge) drops and rewrites; the added columns that look like renames.

    ``dropped`` holds the ``(schema, table)`` of tables this migration drops: their columns go
    with them and are not refused one by one. The result holds ``(schema, table, column)``.
    """
    _guard_tables(upgrade_ops, guard)
    paired: set[Any] = set()
    for container in upgrade_ops.ops:
        if not isinstance(container, ops.ModifyTableOps):
            continue
        if (container.schema, container.table_name) in dropped:
            continue
        _guard_types(container, guard)
        _guard_unique_rules(container, guard)
        _guard_rules_out_of_view(container, guard)
        paired |= {
            (container.schema, container.table_name, name)
            for name in _guard_columns(container, guard)
        }
    return paired
