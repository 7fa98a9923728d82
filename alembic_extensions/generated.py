"""Generated columns and identities on existing columns, which Alembic cannot migrate.

Alembic only warns ("Computed default ... cannot be modified") when a column becomes a
generated one, stops being one, or gets a new expression, and writes nothing: ``alembic check``
stays clean while the database differs from the model. pgkeel reports the change
(``GeneratedChangeOp``, a difference ``alembic check`` lists) and refuses to write a revision
for it, with the recipe. An identity added to an existing column (which Alembic writes as
``ADD GENERATED ... AS IDENTITY``) is refused unless acknowledged: its sequence starts at 1, below
the values already in the column.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from alembic.operations import MigrateOperation, ops
from sqlalchemy import Identity

from alembic_extensions.indexes import normalise_predicate, text_casts_kept
from alembic_extensions.rules import Violation
from pgkeel import rules

if TYPE_CHECKING:
    from sqlalchemy import Column, Table

GENERATED_COLUMN = rules.GENERATED_COLUMN


class GeneratedChangeOp(MigrateOperation):
    """A column that becomes generated, stops being generated, or gets a new expression."""

    def __init__(
        self, table: str, column: str, old: str | None, new: str | None, schema: str | None
    ) -> None:
        self.table = table
        self.column = column
        self.old = old
        self.new = new
        self.schema = schema

    def reverse(self) -> GeneratedChangeOp:
        """The change back."""
        return GeneratedChangeOp(self.table, self.column, self.new, self.old, self.schema)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        """``("modify_generated", schema, table, column, old, new)``."""
        return ("modify_generated", self.schema, self.table, self.column, self.old, self.new)


def _expression(column: Column[Any]) -> str | None:
    computed = column.computed
    return None if computed is None else str(computed.sqltext)


def generated_ops(model: Table, reflected: Table) -> list[MigrateOperation]:
    """The columns of ``model`` whose generated expression differs from the database's."""
    generated = {c.name for c in (*model.columns, *reflected.columns) if c.computed is not None}
    found: list[MigrateOperation] = []
    for column in model.columns:
        old_column = reflected.columns.get(column.name) if column.name in generated else None
        if old_column is None:  # neither side is generated (nearly every column), or a new one
            continue
        old, new = _expression(old_column), _expression(column)
        kept_casts = text_casts_kept(model)
        if normalise_predicate(old, kept_casts) != normalise_predicate(new, kept_casts):
            found.append(GeneratedChangeOp(model.name, column.name, old, new, model.schema))
    return found


def generated_violation(where: str, op: GeneratedChangeOp) -> Violation:
    """The refusal of a generated column change, with what to write instead."""
    if op.new is None:
        return Violation(
            GENERATED_COLUMN,
            where,
            f"{where} stops being generated (GENERATED ALWAYS AS ({op.old})): Alembic cannot "
            "write that change.",
            "write it by hand in a revision: op.execute('ALTER TABLE <table> ALTER COLUMN "
            "<column> DROP EXPRESSION') (PostgreSQL 13+: the values stay, no rewrite).",
            "none: a revision written by hand (alembic revision -m '...') is the way",
        )
    what = "becomes generated" if op.old is None else "gets a new generation expression"
    return Violation(
        GENERATED_COLUMN,
        where,
        f"{where} {what} (GENERATED ALWAYS AS ({op.new})): Alembic cannot write that change, "
        "and PostgreSQL can only make it by adding a column, which rewrites the table under an "
        "ACCESS EXCLUSIVE lock.",
        "keep a plain column that the code or a trigger fills and backfill it in batches "
        "(op.backfill), or an expression index if it only serves queries; if the rewrite is "
        "acceptable, write a revision by hand that adds the generated column under a new "
        "name, moves the code to it, and drops the old column later (acknowledged).",
        "none: a revision written by hand (alembic revision -m '...') is the way",
    )


class IdentityChangeOp(ops.AlterColumnOp):
    """Alembic's ``alter_column`` that adds or drops an identity, rendered so that it runs.

    Alembic writes the reverse of ``ADD GENERATED ... AS IDENTITY`` as ``server_default=None``,
    which PostgreSQL refuses (``DROP DEFAULT`` on an identity); this one also writes
    ``existing_server_default=sa.Identity(...)``, so Alembic runs ``DROP IDENTITY``.
    """

    @classmethod
    def of(cls, op: ops.AlterColumnOp) -> IdentityChangeOp:
        """The same operation, rendered by pgkeel."""
        changed = copy.copy(op)
        changed.__class__ = cls
        return changed  # type: ignore[return-value]

    def reverse(self) -> IdentityChangeOp:
        """The identity dropped (or added back)."""
        return IdentityChangeOp.of(super().reverse())


def adds_identity(op: ops.AlterColumnOp) -> bool:
    """Whether ``op`` makes an existing column an identity."""
    return isinstance(op.modify_server_default, Identity) and not isinstance(
        op.existing_server_default, Identity
    )


def identity_violation(where: str) -> Violation:
    """The refusal of an identity added to an existing column, with the recipe."""
    from alembic_extensions.acknowledge import acknowledge_hint  # noqa: PLC0415

    return Violation(
        GENERATED_COLUMN,
        where,
        f"{where} becomes an identity: its sequence starts at 1, below the values already in "
        "the column, so new rows get numbers the old rows hold.",
        "acknowledge it, then add a revision written by hand that moves the sequence past "
        "the highest value: op.execute(\"SELECT setval(pg_get_serial_sequence('<table>', "
        "'<column>'), (SELECT max(<column>) FROM <table>))\") (a read of the table, no "
        "lock that blocks writes).",
        acknowledge_hint(where),
    )
