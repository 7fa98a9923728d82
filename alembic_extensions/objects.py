"""Plan the operations that reconcile the objects the models require with the catalog.

The objects are trigger functions, triggers, row-level security and policies. Missing objects
are created, changed ones replaced, and extra ones dropped. An object counts as extra only when
pgkeel created it (its comment holds a pgkeel fingerprint) and its table is one the models
describe or one this migration drops, so objects other tools manage are left alone. A policy's
expressions are compared through the fingerprint, because the catalog keeps them in a
normalised form (``pg_get_expr``) that differs from what the model wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic_extensions.catalog import (
    Catalog,
    Found,
    function_shape,
    local_schema,
    policy_shape,
    trigger_shape,
)
from pgkeel._values import replace
from pgkeel.dbobjects import (
    DatabaseObject,
    Policy,
    RowLevelSecurity,
    Trigger,
    TriggerFunction,
    fingerprint,
    placed_fingerprint,
    required_by,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from alembic.operations.ops import MigrateOperation
    from sqlalchemy import Table

TableKey = tuple[str, str]
"""(schema or "" for the default schema, table name)."""


def normalise(obj: DatabaseObject, default_schema: str) -> DatabaseObject:
    """``obj`` with the default schema written as ``None``, as the catalog side has it."""
    if isinstance(obj, Trigger) and default_schema in (obj.schema, obj.function.schema):
        function = replace(obj.function, schema=local_schema(obj.function.schema, default_schema))
        return replace(obj, schema=local_schema(obj.schema, default_schema), function=function)
    if (
        isinstance(obj, TriggerFunction | RowLevelSecurity | Policy)
        and obj.schema == default_schema
    ):
        return replace(obj, schema=None)
    return obj


def desired_objects(
    tables: Iterable[Table], default_schema: str
) -> dict[tuple[str, ...], DatabaseObject]:
    """Every object ``tables`` require, by identity, in creation order."""
    desired: dict[tuple[str, ...], DatabaseObject] = {}
    for table in tables:
        for obj in required_by(table):
            local = normalise(obj, default_schema)
            desired.setdefault(local.identity, local)
    return desired


def _fingerprint_differs(obj: DatabaseObject, found: Found, *, required: bool) -> bool:
    if found.fingerprint is None:
        return required
    return found.fingerprint not in (fingerprint(obj), placed_fingerprint(obj))


def changed(obj: DatabaseObject, found: Found) -> bool:
    """Whether the catalog's object differs from the model's."""
    if isinstance(obj, TriggerFunction):
        shape = function_shape(obj.source)
    elif isinstance(obj, Trigger):
        shape = trigger_shape(obj)
    elif isinstance(obj, RowLevelSecurity):
        return found.shape != (True, True)
    else:
        shape = policy_shape()
    required = isinstance(obj, Policy)
    return found.shape != shape or _fingerprint_differs(obj, found, required=required)


def _table_key(obj: DatabaseObject) -> TableKey:
    return (obj.identity[1], obj.identity[2])


class Plan:
    """Operations that go before the table operations, and those that go after them."""

    def __init__(self) -> None:
        self.create_functions: list[MigrateOperation] = []
        self.drop_table_objects: list[MigrateOperation] = []
        self.create_table_objects: list[MigrateOperation] = []
        self.drop_functions: list[MigrateOperation] = []

    @property
    def before(self) -> list[MigrateOperation]:
        """Functions first (tables' triggers need them), then what goes away with old tables."""
        return [*self.create_functions, *self.drop_table_objects]

    @property
    def after(self) -> list[MigrateOperation]:
        """Triggers, row-level security and policies on the tables, then unused functions."""
        return [*self.create_table_objects, *self.drop_functions]


_CREATE_ORDER = {"trigger": 0, "row_security": 1, "policy": 2}
_DROP_ORDER = {"policy": 0, "trigger": 1, "row_security": 2}


def _sorted(ops: list[MigrateOperation], order: dict[str, int]) -> list[MigrateOperation]:
    def key(op: MigrateOperation) -> tuple[int, tuple[str, ...]]:
        identity: tuple[str, ...] = op.target.identity  # type: ignore[attr-defined]
        return (order.get(identity[0], 0), identity)

    return sorted(ops, key=key)


class Planner:
    """Builds the ``Plan`` for one comparison."""

    def __init__(self, catalog: Catalog, managed: set[TableKey], dropped: set[TableKey]) -> None:
        self.catalog = catalog
        self.managed = managed
        self.dropped = dropped
        self.plan = Plan()

    def _missing_or_changed(self, obj: DatabaseObject) -> None:
        found = self.catalog.objects.get(obj.identity)
        if found is not None and not changed(obj, found):
            return
        from alembic_extensions.ops import (  # noqa: PLC0415  # loaded when an op is built
            CreateObjectOp,
            DropObjectOp,
            ReplaceFunctionOp,
        )

        if isinstance(obj, TriggerFunction):
            if found is None:
                self.plan.create_functions.append(CreateObjectOp(obj))
            else:
                old = found.obj
                assert isinstance(old, TriggerFunction)  # noqa: S101  # same identity, same kind
                self.plan.create_functions.append(ReplaceFunctionOp(obj, old))
            return
        if found is not None and not isinstance(obj, RowLevelSecurity):
            self.plan.drop_table_objects.append(DropObjectOp(found.obj))
        self.plan.create_table_objects.append(CreateObjectOp(obj))

    def _extra(self, found: Found, still_used: set[tuple[str, ...]]) -> None:
        from alembic_extensions.ops import DropObjectOp  # noqa: PLC0415  # loaded when an op is built

        obj = found.obj
        table_known = isinstance(obj, TriggerFunction) or (
            _table_key(obj) in self.managed | self.dropped
        )
        if not table_known:
            return
        if isinstance(obj, RowLevelSecurity):
            if _table_key(obj) not in self.catalog.foreign_policies:
                self.plan.drop_table_objects.append(DropObjectOp(obj))
        elif found.fingerprint is None:
            return
        elif isinstance(obj, TriggerFunction):
            if obj.identity not in still_used:
                self.plan.drop_functions.append(DropObjectOp(obj))
        else:
            self.plan.drop_table_objects.append(DropObjectOp(obj))

    def _functions_still_used(
        self, desired: dict[tuple[str, ...], DatabaseObject]
    ) -> set[tuple[str, ...]]:
        """Functions that a trigger which stays in the database still runs."""
        dropped_triggers = {op.target.identity for op in self.plan.drop_table_objects}  # type: ignore[attr-defined]
        return {
            found.obj.function.identity
            for identity, found in self.catalog.objects.items()
            if isinstance(found.obj, Trigger)
            and (identity in desired or identity not in dropped_triggers)
        }

    def build(self, desired: dict[tuple[str, ...], DatabaseObject]) -> Plan:
        """Create what is missing, replace what changed, drop what pgkeel made and no longer uses.

        Functions come last: whether one is still used depends on the triggers that stay.
        """
        for obj in desired.values():
            self._missing_or_changed(obj)
        extras = [
            found for identity, found in self.catalog.objects.items() if identity not in desired
        ]
        for found in extras:
            if not isinstance(found.obj, TriggerFunction):
                self._extra(found, set())
        still_used = self._functions_still_used(desired)
        for found in extras:
            if isinstance(found.obj, TriggerFunction):
                self._extra(found, still_used)
        plan = self.plan
        plan.drop_table_objects = _sorted(plan.drop_table_objects, _DROP_ORDER)
        plan.create_table_objects = _sorted(plan.create_table_objects, _CREATE_ORDER)
        return plan
