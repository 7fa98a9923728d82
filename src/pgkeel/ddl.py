"""The database objects behind ``TimestampMixin`` and ``SoftDeleteMixin``: shared trigger functions.

The function sets ``updated_at`` on every ``UPDATE`` (ORM, Core, raw SQL, ``INSERT ... ON CONFLICT
DO UPDATE``) and puts back the old ``created_at`` if a statement tries to change it. It uses
``statement_timestamp()``, so two updates in one transaction still move ``updated_at`` forward,
while every row touched by one statement gets the same time.

``SoftDeleteMixin``'s ``is_deleted`` is an ordinary ``boolean NOT NULL DEFAULT false`` column that
a ``BEFORE INSERT OR UPDATE`` trigger sets to ``deleted_at IS NOT NULL`` on every row written.
Unlike a stored generated column, adding it to a table that holds rows rewrites nothing
(PostgreSQL keeps a constant default in the catalog), and every row written is still right,
whatever it writes into ``is_deleted`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgkeel.dbobjects import Trigger, TriggerFunction
from pgkeel.naming import fit_identifier

if TYPE_CHECKING:
    from sqlalchemy import Table

UPDATED_AT_FUNCTION = TriggerFunction(
    name="pgkeel_set_updated_at",
    body=(
        "NEW.updated_at := statement_timestamp();\nNEW.created_at := OLD.created_at;\nRETURN NEW;"
    ),
)


def updated_at_trigger_name(table_name: str) -> str:
    """``trg_<table>_updated_at``, fitted to 63 bytes."""
    return fit_identifier(f"trg_{table_name}_updated_at")


def updated_at_trigger(table: Table) -> Trigger:
    """The ``BEFORE UPDATE`` trigger that keeps ``table``'s timestamps right."""
    return Trigger(
        table=table.name,
        name=updated_at_trigger_name(table.name),
        function=UPDATED_AT_FUNCTION,
        schema=table.schema,
    )


def timestamp_objects(table: Table) -> tuple[TriggerFunction, Trigger]:
    """Everything ``table`` needs beyond its columns for ``created_at``/``updated_at``."""
    return (UPDATED_AT_FUNCTION, updated_at_trigger(table))


IS_DELETED_FUNCTION = TriggerFunction(
    name="pgkeel_set_is_deleted",
    body="NEW.is_deleted := NEW.deleted_at IS NOT NULL;\nRETURN NEW;",
)


def is_deleted_trigger(table: Table) -> Trigger:
    """The ``BEFORE INSERT OR UPDATE`` trigger that keeps ``table.is_deleted`` right."""
    return Trigger(
        table=table.name,
        name=fit_identifier(f"trg_{table.name}_is_deleted"),
        function=IS_DELETED_FUNCTION,
        events=("INSERT", "UPDATE"),
        schema=table.schema,
    )


def soft_delete_objects(table: Table) -> tuple[TriggerFunction, Trigger]:
    """Everything ``table`` needs beyond its columns for ``is_deleted``."""
    return (IS_DELETED_FUNCTION, is_deleted_trigger(table))
