"""The database objects behind ``TimestampMixin``: one shared trigger function, a trigger per table.

The function sets ``updated_at`` on every ``UPDATE`` (ORM, Core, raw SQL, ``INSERT ... ON CONFLICT
DO UPDATE``) and puts back the old ``created_at`` if a statement tries to change it. It uses
``statement_timestamp()``, so two updates in one transaction still move ``updated_at`` forward,
while every row touched by one statement gets the same time.
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
