"""What the database holds of pgkeel's kinds of object, read in four catalog queries.

One query per kind (trigger functions, triggers, row-level security flags, policies), each
covering every table of the compared schemas at once: the number of queries does not grow with
the number of tables. Each row becomes the same value object the models describe (so the two
can be compared and the catalog's one rendered as the reverse of a change), with the shape the
catalog reports and the fingerprint of pgkeel's comment, if any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import text

from pgkeel.dbobjects import (
    DatabaseObject,
    Policy,
    RowLevelSecurity,
    Trigger,
    TriggerFunction,
    read_marker,
    written_policy,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

FUNCTIONS = text("""
SELECT n.nspname, p.proname, p.prosrc, d.description
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_description d
  ON d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0
WHERE p.prorettype = 'trigger'::regtype AND p.pronargs = 0 AND n.nspname = ANY(:schemas)
""")

TRIGGERS = text("""
SELECT n.nspname, c.relname, t.tgname, t.tgtype, t.tgenabled, fn.nspname, f.proname,
       d.description
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc f ON f.oid = t.tgfoid
JOIN pg_namespace fn ON fn.oid = f.pronamespace
LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_trigger'::regclass
WHERE NOT t.tgisinternal AND n.nspname = ANY(:schemas)
""")

ROW_SECURITY = text("""
SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND (c.relrowsecurity OR c.relforcerowsecurity)
  AND n.nspname = ANY(:schemas)
""")

POLICIES = text("""
SELECT n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive,
       p.polroles = '{0}'::oid[] AS to_public,
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
       d.description
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_policy'::regclass
WHERE n.nspname = ANY(:schemas)
""")

QUERY_COUNT = 4
"""Catalog queries per autogenerate run, whatever the number of tables."""

_ROW, _BEFORE, _INSERT, _DELETE, _UPDATE, _TRUNCATE, _INSTEAD = 1, 2, 4, 8, 16, 32, 64
_EVENT_BITS = (
    ("INSERT", _INSERT),
    ("UPDATE", _UPDATE),
    ("DELETE", _DELETE),
    ("TRUNCATE", _TRUNCATE),
)
_FUNCTION_SOURCE = re.compile(r"^\nBEGIN\n(.*)\nEND;\n$", re.DOTALL)


@dataclass(frozen=True)
class Found:
    """An object as the catalog describes it."""

    obj: DatabaseObject
    shape: tuple[object, ...]
    fingerprint: str | None = None


@dataclass
class Catalog:
    """pgkeel-relevant objects of the compared schemas, keyed by identity."""

    objects: dict[tuple[str, ...], Found] = field(default_factory=dict)
    foreign_policies: set[tuple[str, str]] = field(default_factory=set)
    """(schema, table) of tables with a policy pgkeel did not create."""

    def add(self, found: Found) -> None:
        """Record one object."""
        self.objects[found.obj.identity] = found


def local_schema(name: str | None, default_schema: str) -> str | None:
    """``name``, or ``None`` for the default schema (how both sides of a comparison write it)."""
    return None if name == default_schema else name


def function_shape(source: str) -> tuple[object, ...]:
    """What is compared for a trigger function: its source as ``pg_proc.prosrc`` has it."""
    return (source,)


def trigger_shape(trigger: Trigger) -> tuple[object, ...]:
    """What is compared for a trigger: row-level, timing, events, function, enabled."""
    events = tuple(name for name, _bit in _EVENT_BITS if name in trigger.events)
    function = (trigger.function.schema, trigger.function.name)
    return (True, trigger.timing.upper(), events, function, "O")


def policy_shape() -> tuple[object, ...]:
    """A pgkeel policy is permissive, for every command, for every role."""
    return ("*", True, True)


def _body(source: str) -> str:
    match = _FUNCTION_SOURCE.match(source)
    return match.group(1) if match else source


def _decode_trigger(tgtype: int) -> tuple[bool, str, tuple[str, ...]]:
    timing = "INSTEAD OF" if tgtype & _INSTEAD else "BEFORE" if tgtype & _BEFORE else "AFTER"
    events = tuple(name for name, bit in _EVENT_BITS if tgtype & bit)
    return bool(tgtype & _ROW), timing, events


def _read_functions(
    connection: Connection, schemas: list[str], default: str, catalog: Catalog
) -> None:
    for nspname, name, source, comment in connection.execute(FUNCTIONS, {"schemas": schemas}):
        function = TriggerFunction(
            name=name, body=_body(source), schema=local_schema(nspname, default)
        )
        catalog.add(Found(function, function_shape(source), read_marker(comment)))


def _read_triggers(
    connection: Connection, schemas: list[str], default: str, catalog: Catalog
) -> None:
    rows = connection.execute(TRIGGERS, {"schemas": schemas})
    for nspname, table, name, tgtype, enabled, fn_schema, fn_name, comment in rows:
        row_level, timing, events = _decode_trigger(tgtype)
        function = TriggerFunction(name=fn_name, body="", schema=local_schema(fn_schema, default))
        trigger = Trigger(
            table=table,
            name=name,
            function=function,
            timing=timing,
            events=events,
            schema=local_schema(nspname, default),
        )
        shape = (row_level, timing, events, (function.schema, function.name), enabled)
        catalog.add(Found(trigger, shape, read_marker(comment)))


def _read_row_security(
    connection: Connection, schemas: list[str], default: str, catalog: Catalog
) -> None:
    for nspname, table, enabled, forced in connection.execute(ROW_SECURITY, {"schemas": schemas}):
        security = RowLevelSecurity(table=table, schema=local_schema(nspname, default))
        catalog.add(Found(security, (enabled, forced)))


def _read_policies(
    connection: Connection, schemas: list[str], default: str, catalog: Catalog
) -> None:
    rows = connection.execute(POLICIES, {"schemas": schemas})
    for nspname, table, name, cmd, permissive, to_public, using, check, comment in rows:
        fingerprint = read_marker(comment)
        schema = local_schema(nspname, default)
        if fingerprint is None:
            catalog.foreign_policies.add((schema or "", table))
        policy = Policy(
            table=table,
            name=name,
            using=using or "true",
            with_check=check or using or "true",
            schema=schema,
        )
        catalog.add(
            Found(written_policy(policy, comment), (cmd, permissive, to_public), fingerprint)
        )


def read_catalog(connection: Connection, schemas: Sequence[str], default_schema: str) -> Catalog:
    """Trigger functions, triggers, row-level security and policies of ``schemas``."""
    catalog = Catalog()
    names = sorted(set(schemas))
    for read in (_read_functions, _read_triggers, _read_row_security, _read_policies):
        read(connection, names, default_schema, catalog)
    return catalog
