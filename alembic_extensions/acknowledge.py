"""Changes that lose data or rewrite a table, made on purpose: ``op.acknowledge(...)``.

pgkeel refuses a revision that drops a column or a table, or changes a column's type in a way
that rewrites the table, unless its author says the change is intended when generating it::

    alembic -x acknowledge=orders.note revision --autogenerate -m "drop notes"

The revision then carries the decision where a reviewer sees it, right before the operation::

    op.acknowledge('drop-column', 'orders.note', reason='...')
    op.drop_column('orders', 'note')

Online it does nothing. In the offline SQL (``alembic upgrade --sql``, which ``pgkeel check``
lints) it writes ``-- squawk-ignore <rule>`` right before the statement it acknowledges, so
squawk accepts that one statement of that one migration and still flags every other drop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation
from alembic.util import CommandError

from pgkeel import rules

if TYPE_CHECKING:
    from collections.abc import Iterable

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from alembic_extensions.ops import NoOp

DROP_COLUMN = rules.DROP_COLUMN
DROP_TABLE = rules.DROP_TABLE
DROP_UNIQUE = rules.DROP_UNIQUE
RENAME = rules.RENAME
TABLE_REWRITE = rules.TABLE_REWRITE
TYPE_CHANGE = rules.TYPE_CHANGE
"""A type change PostgreSQL makes without rewriting the table (pgkeel checked it)."""
ADD_COLUMN_REWRITE = rules.ADD_COLUMN_REWRITE
SET_NOT_NULL = rules.SET_NOT_NULL
PRIMARY_KEY_CHANGE = rules.PRIMARY_KEY_CHANGE
NOT_NULL_PROVEN = rules.NOT_NULL_PROVEN
CONSTRAINT_REPLACED = rules.CONSTRAINT_REPLACED
GENERATED_COLUMN = rules.GENERATED_COLUMN
"""A foreign key or check dropped and added again in one transaction: never missing."""
"""NOT NULL set where a valid check proves it, and that check dropped (pgkeel checked it)."""

SQUAWK_RULES: dict[str, tuple[str, ...]] = {
    DROP_COLUMN: ("ban-drop-column",),
    DROP_TABLE: ("ban-drop-table", "ban-drop-constraint"),
    DROP_UNIQUE: ("ban-drop-constraint",),
    RENAME: ("renaming-column", "renaming-table"),
    TABLE_REWRITE: ("changing-column-type",),
    TYPE_CHANGE: ("changing-column-type",),
    ADD_COLUMN_REWRITE: ("adding-field-with-default",),
    SET_NOT_NULL: ("adding-not-nullable-field",),
    NOT_NULL_PROVEN: ("adding-not-nullable-field", "ban-drop-constraint"),
    CONSTRAINT_REPLACED: ("ban-drop-constraint",),
    GENERATED_COLUMN: ("adding-field-with-default",),
    PRIMARY_KEY_CHANGE: ("ban-drop-constraint", "adding-serial-primary-key-field"),
}
"""The squawk findings each acknowledged change makes on purpose."""

X_ARGUMENT = "acknowledge"
"""``alembic -x acknowledge=orders.note,invoices revision --autogenerate``."""
RENAME_ARGUMENT = "rename"
"""``alembic -x rename=orders.name:full_name revision --autogenerate``: write a rename."""
BACKFILL_ARGUMENT = "backfill"
"""``-x backfill=orders.tenant_id=<SQL>``: the value the old rows get before NOT NULL."""
DOWNGRADE_BACKFILL_ARGUMENT = "downgrade_backfill"
"""``-x downgrade_backfill=orders.note=<SQL>``: the value a column the upgrade made nullable
gives its NULL rows before the downgrade makes it NOT NULL again."""
KEEP_TYPE_ARGUMENT = "downgrade_keep_type"
"""``-x downgrade_keep_type=orders.code``: the downgrade leaves the type the upgrade gave."""


class AcknowledgeOp(MigrateOperation):
    """A change pgkeel would refuse, declared intended by the migration's author."""

    def __init__(self, rule: str, where: str, reason: str | None = None) -> None:
        self.rule = rule
        self.where = where
        self.reason = reason

    def reverse(self) -> NoOp:
        """Nothing: the reverse operation (an add, a create) loses nothing."""
        from alembic_extensions.ops import NoOp  # noqa: PLC0415  # loaded when an op is built

        return NoOp()

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """No difference of its own: the operation it acknowledges is the difference."""
        return ()

    @classmethod
    def acknowledge(
        cls, operations: Operations, rule: str, where: str, *, reason: str | None = None
    ) -> None:
        """Declare that the next operation (a drop, a table rewrite) is intended."""
        operations.invoke(cls(rule, where, reason))

    def squawk_comment(self) -> str:
        """The SQL comment lines that tell squawk the next statement is intended."""
        lines = [f"-- pgkeel: {self.rule} {self.where} is intended"]
        rules = SQUAWK_RULES.get(self.rule, ())
        if rules:
            lines.append(f"-- squawk-ignore {','.join(rules)}")
        return "\n".join(lines) + "\n"


def run_acknowledge(operations: Operations, operation: AcknowledgeOp) -> None:
    """Offline, write the squawk comment right before the next statement; online, nothing."""
    context = operations.get_context()
    buffer = context.impl.output_buffer
    if context.as_sql and buffer is not None:
        buffer.write(operation.squawk_comment())


def x_values(context: MigrationContext, name: str) -> list[str]:
    """The comma-separated values of every ``-x name=a,b`` given to the Alembic command."""
    environment = context.environment_context
    arguments: Iterable[str] = environment.get_x_argument() if environment is not None else ()
    values: list[str] = []
    for argument in arguments:
        key, _, value = argument.partition("=")
        if key.strip() == name:
            values.extend(part.strip() for part in value.split(",") if part.strip())
    return values


def acknowledged_items(context: MigrationContext) -> frozenset[str]:
    """What ``-x acknowledge=a,b`` names (``table.column`` or ``table``), as given."""
    return frozenset(x_values(context, X_ARGUMENT))


def column_renames(context: MigrationContext) -> dict[str, dict[str, str]]:
    """``-x rename=orders.name:full_name`` as ``{"orders": {"name": "full_name"}}``."""
    renames: dict[str, dict[str, str]] = {}
    for value in x_values(context, RENAME_ARGUMENT):
        old, _, new = value.partition(":")
        table, _, column = old.rpartition(".")
        if not (table and column and new):
            raise CommandError(
                f"-x {RENAME_ARGUMENT}={value}: expected table.old_column:new_column. Fix: "
                f"for example -x {RENAME_ARGUMENT}=orders.name:full_name."
            )
        renames.setdefault(table, {})[column] = new
    return renames


def _raw_x_values(context: MigrationContext, name: str) -> list[str]:
    """Every ``-x name=value`` value as given, commas and all (a value that is SQL)."""
    environment = context.environment_context
    arguments: Iterable[str] = environment.get_x_argument() if environment is not None else ()
    found = (argument.partition("=") for argument in arguments)
    return [value.strip() for key, _, value in found if key.strip() == name]


_BACKFILL_EXAMPLE = "orders.tenant_id=(SELECT t.id FROM tenants t WHERE t.name = orders.shop)"


def _backfill_format_error(name: str, value: str) -> str:
    return (
        f"-x {name}={value}: expected table.column=<SQL giving each old row its value>. "
        f'Fix: for example -x "{name}={_BACKFILL_EXAMPLE}" (quoted for the shell).'
    )


def column_backfills(context: MigrationContext, name: str) -> dict[str, str]:
    """``-x backfill=orders.tenant_id=<SQL>`` as ``{"orders.tenant_id": "<SQL>"}``."""
    backfills: dict[str, str] = {}
    for value in _raw_x_values(context, name):
        where, _, expression = value.partition("=")
        table, _, column = where.strip().rpartition(".")
        if not (table and column and expression.strip()):
            raise CommandError(_backfill_format_error(name, value))
        backfills[where.strip()] = expression.strip()
    return backfills


def acknowledge_hint(where: str) -> str:
    """How the author says the change is intended: the command and what it writes."""
    return (
        f"if it is intended, generate the revision again with -x {X_ARGUMENT}={where} "
        f"(alembic -x {X_ARGUMENT}={where} revision --autogenerate -m '...', or make revision "
        f"m='...' x={X_ARGUMENT}={where} in a service made from pgkeel's template): pgkeel "
        "writes op.acknowledge(...) before the operation, for the reviewer and for squawk"
    )
