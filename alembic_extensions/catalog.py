"""What the database holds of pgkeel's kinds of object, read in one catalog query per run.

One subquery per kind (trigger functions, triggers, row-level security flags, policies, enum
types and the columns that use them), each covering every table of the compared schemas at
once, all sent as one statement whose columns are the JSON arrays of their rows: one round trip
per autogenerate run, whatever the number of tables, shared by the comparators of that run.
Each row becomes the same value object the models describe (so the two can be compared and the
catalog's one rendered as the reverse of a change), with the shape the catalog reports and the
fingerprint of pgkeel's comment, if any.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from pgkeel._values import Value
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
    from collections.abc import Mapping, Sequence

    from alembic.autogenerate.api import AutogenContext
    from sqlalchemy.engine import Connection

_QUERIES = {
    "functions": """
SELECT n.nspname, p.proname, p.prosrc, d.description
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_description d
  ON d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0
WHERE p.prorettype = 'trigger'::regtype AND p.pronargs = 0 AND n.nspname = ANY(%(schemas)s)
""",
    "triggers": """
SELECT n.nspname, c.relname, t.tgname, t.tgtype, t.tgenabled, fn.nspname AS fn_schema,
       f.proname AS fn_name, d.description
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc f ON f.oid = t.tgfoid
JOIN pg_namespace fn ON fn.oid = f.pronamespace
LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_trigger'::regclass
WHERE NOT t.tgisinternal AND n.nspname = ANY(%(schemas)s)
""",
    "row_security": """
SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND (c.relrowsecurity OR c.relforcerowsecurity)
  AND n.nspname = ANY(%(schemas)s)
""",
    "policies": """
SELECT n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive,
       p.polroles = '{0}'::oid[] AS to_public,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr,
       d.description
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_policy'::regclass
WHERE n.nspname = ANY(%(schemas)s)
""",
    "enum_types": """
SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = ANY(%(schemas)s)
GROUP BY n.nspname, t.typname
""",
    "enum_columns": """
SELECT n.nspname, t.typname, c.relname, a.attname
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
JOIN pg_type t ON t.oid = a.atttypid OR t.typarray = a.atttypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND n.nspname = ANY(%(schemas)s) AND NOT a.attisdropped
""",
}
"""What each comparator reads, by kind: trigger functions, triggers, row-level security flags,
policies (``objects``), enum types and the columns that use them (``enums``)."""

_SUBQUERY = "(SELECT coalesce(json_agg(q), '[]'::json) FROM ({query}) AS q) AS {kind}"
_SNAPSHOT = "SELECT " + ",\n".join(
    _SUBQUERY.format(query=query, kind=kind) for kind, query in _QUERIES.items()
)
"""The one statement of a run, built once from the constants above; the schemas are a bound
parameter. Sent as written (psycopg's ``%(name)s``, as every statement pgkeel composes): a
SQLAlchemy ``text()`` would scan its 2.5 kB for parameters when this module is imported, and be
compiled again (a cache lookup) on each run."""

QUERY_COUNT = 1
"""Catalog queries per autogenerate run, whatever the number of tables."""

Row = dict[str, Any]
"""One catalog row: its columns by name (JSON values: text, numbers, booleans, lists, None)."""

_ROW, _BEFORE, _INSERT, _DELETE, _UPDATE, _TRUNCATE, _INSTEAD = 1, 2, 4, 8, 16, 32, 64
_EVENT_BITS = (
    ("INSERT", _INSERT),
    ("UPDATE", _UPDATE),
    ("DELETE", _DELETE),
    ("TRUNCATE", _TRUNCATE),
)
_FUNCTION_SOURCE = r"(?s)^\nBEGIN\n(.*)\nEND;\n$"
"""``pg_proc.prosrc`` of a pgkeel trigger function; compiled on first use (``re``'s cache): a
comparison whose schemas hold no trigger function never needs it."""


class Found(Value):
    """An object as the catalog describes it."""

    obj: DatabaseObject
    shape: tuple[object, ...]
    fingerprint: str | None = None


class Catalog:
    """pgkeel-relevant objects of the compared schemas, keyed by identity."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, ...], Found] = {}
        self.foreign_policies: set[tuple[str, str]] = set()
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
    match = re.match(_FUNCTION_SOURCE, source)
    return match.group(1) if match else source


def _decode_trigger(tgtype: int) -> tuple[bool, str, tuple[str, ...]]:
    timing = "INSTEAD OF" if tgtype & _INSTEAD else "BEFORE" if tgtype & _BEFORE else "AFTER"
    events = tuple(name for name, bit in _EVENT_BITS if tgtype & bit)
    return bool(tgtype & _ROW), timing, events


def _read_functions(rows: list[Row], default: str, catalog: Catalog) -> None:
    for row in rows:
        function = TriggerFunction(
            name=row["proname"],
            body=_body(row["prosrc"]),
            schema=local_schema(row["nspname"], default),
        )
        catalog.add(Found(function, function_shape(row["prosrc"]), read_marker(row["description"])))


def _read_triggers(rows: list[Row], default: str, catalog: Catalog) -> None:
    for row in rows:
        row_level, timing, events = _decode_trigger(row["tgtype"])
        function = TriggerFunction(
            name=row["fn_name"], body="", schema=local_schema(row["fn_schema"], default)
        )
        trigger = Trigger(
            table=row["relname"],
            name=row["tgname"],
            function=function,
            timing=timing,
            events=events,
            schema=local_schema(row["nspname"], default),
        )
        shape = (row_level, timing, events, (function.schema, function.name), row["tgenabled"])
        catalog.add(Found(trigger, shape, read_marker(row["description"])))


def _read_row_security(rows: list[Row], default: str, catalog: Catalog) -> None:
    for row in rows:
        security = RowLevelSecurity(
            table=row["relname"], schema=local_schema(row["nspname"], default)
        )
        catalog.add(Found(security, (row["relrowsecurity"], row["relforcerowsecurity"])))


def _read_policies(rows: list[Row], default: str, catalog: Catalog) -> None:
    for row in rows:
        comment, using = row["description"], row["using_expr"]
        fingerprint = read_marker(comment)
        schema = local_schema(row["nspname"], default)
        if fingerprint is None:
            catalog.foreign_policies.add((schema or "", row["relname"]))
        policy = Policy(
            table=row["relname"],
            name=row["polname"],
            using=using or "true",
            with_check=row["check_expr"] or using or "true",
            schema=schema,
        )
        shape = (row["polcmd"], row["polpermissive"], row["to_public"])
        catalog.add(Found(written_policy(policy, comment), shape, fingerprint))


def read_rows(connection: Connection, schemas: Sequence[str]) -> Mapping[str, list[Row]]:
    """Every kind of ``_QUERIES`` for ``schemas``, in one statement (one round trip)."""
    snapshot = connection.exec_driver_sql(_SNAPSHOT, {"schemas": sorted(set(schemas))}).one()
    return snapshot._asdict()


_RUN_ROWS: WeakKeyDictionary[AutogenContext, tuple[tuple[str, ...], Mapping[str, list[Row]]]]
_RUN_ROWS = WeakKeyDictionary()


def rows_of_run(autogen_context: AutogenContext, schemas: Sequence[str]) -> Mapping[str, list[Row]]:
    """The catalog rows of this autogenerate run, read once for all of pgkeel's comparators."""
    key = tuple(sorted(set(schemas)))
    cached = _RUN_ROWS.get(autogen_context)
    if cached is not None and cached[0] == key:
        return cached[1]
    connection = autogen_context.connection
    if connection is None:
        raise ValueError("pgkeel's comparators need a database connection.")
    rows = read_rows(connection, key)
    _RUN_ROWS[autogen_context] = (key, rows)
    return rows


def read_catalog(rows: Mapping[str, list[Row]], default_schema: str) -> Catalog:
    """Trigger functions, triggers, row-level security and policies, from ``rows``."""
    catalog = Catalog()
    _read_functions(rows["functions"], default_schema, catalog)
    _read_triggers(rows["triggers"], default_schema, catalog)
    _read_row_security(rows["row_security"], default_schema, catalog)
    _read_policies(rows["policies"], default_schema, catalog)
    return catalog
