"""Database objects that models require beyond tables: functions, triggers, row-level security.

The runtime library describes *what* the database must contain as frozen value objects with
their DDL; ``Base.metadata.create_all`` installs them through DDL events and the Alembic plugin
compares them with the catalog and renders operations. Each object is attached to the
``Table`` that needs it (``require(table, obj)``), so the description travels with the metadata.

``create_statements(obj)`` is what both ``create_all`` and the migration operations run: the
object's DDL, then a comment holding ``fingerprint(obj)`` (``marker(obj)``) on the functions,
triggers and policies. The comment marks the object as pgkeel's and lets autogenerate notice a
changed definition that the catalog stores in a normalised form (policy expressions), so a
database made either way compares the same.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, cast

from sqlalchemy import DDL, event

from pgkeel._lazy import LazyModule
from pgkeel._values import Value, replace

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Iterator

    from psycopg import sql
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Connection

INFO_KEY = "pgkeel_objects"
MARKER_PREFIX = "pgkeel:"
_MARKER = r"^pgkeel:([0-9a-f]+)\b"
"""A pgkeel comment's start; compiled on first use (``re``'s cache), not when a model is defined."""

if not TYPE_CHECKING:
    sql = LazyModule("psycopg.sql")  # composed at DDL time only: defining a model stays light


class DatabaseObject(Protocol):
    """An object pgkeel creates and drops as a whole, identified by kind and qualified name."""

    @property
    def identity(self) -> tuple[str, ...]:
        """Kind and qualified name: two objects with the same identity are the same object."""
        ...

    def create_sql(self) -> sql.Composed:
        """The statement that creates this object."""
        ...

    def drop_sql(self) -> sql.Composed:
        """The statement that removes this object."""
        ...


def qualified(schema: str | None, name: str) -> sql.Composable:
    """``"name"`` or ``"schema"."name"``."""
    if schema is None:
        return sql.Identifier(name)
    return sql.Identifier(schema, name)


class TriggerFunction(Value):
    """A PL/pgSQL ``RETURNS trigger`` function; ``body`` goes between ``BEGIN`` and ``END``."""

    name: str
    body: str
    schema: str | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """Kind and qualified name."""
        return ("function", self.schema or "", self.name)

    @property
    def source(self) -> str:
        """The function's source exactly as PostgreSQL stores it in ``pg_proc.prosrc``."""
        return f"\nBEGIN\n{self.body.strip()}\nEND;\n"

    def create_sql(self) -> sql.Composed:
        """``CREATE OR REPLACE FUNCTION ... RETURNS trigger``."""
        return sql.SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}"
        ).format(qualified(self.schema, self.name), sql.Literal(self.source))

    def drop_sql(self) -> sql.Composed:
        """``DROP FUNCTION IF EXISTS``."""
        return sql.SQL("DROP FUNCTION IF EXISTS {}()").format(qualified(self.schema, self.name))


class Trigger(Value):
    """A ``FOR EACH ROW`` trigger on a table that runs a ``TriggerFunction``."""

    table: str
    name: str
    function: TriggerFunction
    timing: str = "BEFORE"
    events: tuple[str, ...] = ("UPDATE",)
    schema: str | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """Kind and qualified name (trigger names are unique per table)."""
        return ("trigger", self.schema or "", self.table, self.name)

    def create_sql(self) -> sql.Composed:
        """``CREATE TRIGGER ... FOR EACH ROW EXECUTE FUNCTION ...``."""
        events = sql.SQL(" OR ").join(sql.SQL(event) for event in self.events)
        return sql.SQL("CREATE TRIGGER {} {} {} ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
            sql.Identifier(self.name),
            sql.SQL(self.timing),
            events,
            qualified(self.schema, self.table),
            qualified(self.function.schema, self.function.name),
        )

    def drop_sql(self) -> sql.Composed:
        """``DROP TRIGGER IF EXISTS ... ON table``."""
        return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
            sql.Identifier(self.name), qualified(self.schema, self.table)
        )


class RowLevelSecurity(Value):
    """Row-level security ENABLED and FORCED on a table (FORCE applies it to the owner too)."""

    table: str
    schema: str | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """Kind and qualified table name."""
        return ("row_security", self.schema or "", self.table)

    def create_sql(self) -> sql.Composed:
        """``ALTER TABLE ... ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY``."""
        return sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY").format(
            qualified(self.schema, self.table)
        )

    def drop_sql(self) -> sql.Composed:
        """``ALTER TABLE ... NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY``."""
        return sql.SQL(
            "ALTER TABLE {} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY"
        ).format(qualified(self.schema, self.table))


class Policy(Value):
    """A permissive row-level security policy ``FOR ALL`` with ``USING`` and ``WITH CHECK``."""

    table: str
    name: str
    using: str
    with_check: str
    schema: str | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        """Kind and qualified name (policy names are unique per table)."""
        return ("policy", self.schema or "", self.table, self.name)

    def create_sql(self) -> sql.Composed:
        """``CREATE POLICY ... FOR ALL USING (...) WITH CHECK (...)``."""
        return sql.SQL("CREATE POLICY {} ON {} FOR ALL USING ({}) WITH CHECK ({})").format(
            sql.Identifier(self.name),
            qualified(self.schema, self.table),
            sql.SQL(self.using),
            sql.SQL(self.with_check),
        )

    def drop_sql(self) -> sql.Composed:
        """``DROP POLICY IF EXISTS ... ON table``."""
        return sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(
            sql.Identifier(self.name), qualified(self.schema, self.table)
        )


def fingerprint(obj: DatabaseObject) -> str:
    """A short stable hash of an object's definition, to notice a changed one cheaply.

    The schema of a trigger's or policy's table is left out: ``ALTER TABLE ... SET SCHEMA``
    moves them with the table, unchanged, and the catalog finds them in their new schema.
    """
    unplaced = replace(obj, schema=None) if isinstance(obj, Trigger | Policy) else obj
    return _fingerprint(cast("Hashable", unplaced))


def placed_fingerprint(obj: DatabaseObject) -> str:
    """The hash of the object's DDL as written, table schema included.

    What pgkeel's comments held before ``fingerprint`` left the table's schema out; a
    comparison accepts it too, so that objects made then are not made again.
    """
    return _fingerprint(cast("Hashable", obj))


@lru_cache(maxsize=4096)  # remembered per object: autogenerate compares the same ones often
def _fingerprint(obj: Hashable) -> str:
    text = repr(cast("DatabaseObject", obj).create_sql())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def marker(obj: DatabaseObject) -> str:
    """The comment that marks ``obj`` as pgkeel's and records its definition's fingerprint.

    A policy's comment also keeps its expressions as the model wrote them: the catalog only
    has them normalised, and the reverse of dropping a policy must recreate the same one.
    """
    stamp = f"{MARKER_PREFIX}{fingerprint(obj)}"
    if isinstance(obj, Policy):
        written = {"using": obj.using, "with_check": obj.with_check}
        return f"{stamp} {json.dumps(written, sort_keys=True)}"
    return stamp


def read_marker(comment: str | None) -> str | None:
    """The fingerprint a pgkeel comment holds, or None for a comment pgkeel did not write."""
    match = re.match(_MARKER, comment or "")
    return match.group(1) if match else None


def written_policy(policy: Policy, comment: str | None) -> Policy:
    """``policy`` with the expressions its pgkeel comment recorded, when they still match it."""
    fingerprint_in_comment = read_marker(comment)
    if fingerprint_in_comment is None or comment is None:
        return policy
    try:
        written = json.loads(comment.split(" ", 1)[1])
        candidate = replace(policy, using=written["using"], with_check=written["with_check"])
    except (IndexError, ValueError, KeyError, TypeError):
        return policy
    return candidate if fingerprint(candidate) == fingerprint_in_comment else policy


def comment_sql(obj: DatabaseObject) -> sql.Composed | None:
    """``COMMENT ON ... IS 'pgkeel:<fingerprint>'`` for the kinds of object that take one."""
    if isinstance(obj, TriggerFunction):
        target = sql.SQL("FUNCTION {}()").format(qualified(obj.schema, obj.name))
    elif isinstance(obj, Trigger | Policy):
        kind = sql.SQL("TRIGGER" if isinstance(obj, Trigger) else "POLICY")
        target = sql.SQL("{} {} ON {}").format(
            kind, sql.Identifier(obj.name), qualified(obj.schema, obj.table)
        )
    else:
        return None
    return sql.SQL("COMMENT ON {} IS {}").format(target, sql.Literal(marker(obj)))


def create_statements(obj: DatabaseObject) -> tuple[sql.Composed, ...]:
    """What creates ``obj`` and stamps its marker: run by ``create_all`` and by migrations."""
    comment = comment_sql(obj)
    return (obj.create_sql(),) if comment is None else (obj.create_sql(), comment)


def require(table: Table, *objects: DatabaseObject) -> None:
    """Record that ``table`` needs ``objects``; creating them twice is harmless (deduplicated)."""
    existing: list[DatabaseObject] = table.info.setdefault(INFO_KEY, [])
    known = {obj.identity for obj in existing}
    existing.extend(obj for obj in objects if obj.identity not in known)


def required_by(table: Table) -> tuple[DatabaseObject, ...]:
    """The objects recorded for one table, in the order they must be created."""
    return tuple(table.info.get(INFO_KEY, ()))


def required_objects(metadata: MetaData) -> tuple[DatabaseObject, ...]:
    """Every object the tables of ``metadata`` need, deduplicated, in creation order."""
    return tuple(_unique(obj for table in metadata.sorted_tables for obj in required_by(table)))


def _unique(objects: Iterable[DatabaseObject]) -> Iterator[DatabaseObject]:
    seen: set[tuple[str, ...]] = set()
    for obj in objects:
        if obj.identity not in seen:
            seen.add(obj.identity)
            yield obj


def _is_function(obj: DatabaseObject) -> bool:
    return obj.identity[0] == "function"


def ddl(statement: sql.Composed) -> DDL:
    """A psycopg-composed statement as a SQLAlchemy DDL element, sent as written.

    ``%`` is doubled for the formatting ``DDL`` applies: a ``LIKE '%x'`` in a policy or a
    ``RAISE '%'`` in a function body reaches PostgreSQL as it was written.
    """
    return DDL(statement.as_string().replace("%", "%%"))  # type: ignore[no-untyped-call]


def _execute(connection: Connection, statement: sql.Composed) -> None:
    connection.execute(ddl(statement))


def _create_for_table(table: Table, connection: Connection, **_: object) -> None:
    """``after_create`` of a table: its functions first, then triggers, RLS and policies."""
    objects = required_by(table)
    for obj in sorted(objects, key=lambda item: not _is_function(item)):
        for statement in create_statements(obj):
            _execute(connection, statement)


def _drop_unused_functions(metadata: MetaData, connection: Connection, **kw: object) -> None:
    """``after_drop`` of the metadata: drop the dropped tables' functions nothing uses any more.

    The catalog decides, not the metadata: a table of the metadata may never have been
    created, and another metadata's tables in the same database may use the same function.
    """
    dropped = kw.get("tables")
    tables = dropped if isinstance(dropped, list) else list(metadata.tables.values())
    for obj in _unique(obj for table in tables for obj in required_by(table)):
        if _is_function(obj) and not _has_dependents(connection, obj):
            _execute(connection, obj.drop_sql())


def _has_dependents(connection: Connection, function: DatabaseObject) -> bool:
    """Whether any object in the database (a trigger, a policy) still uses ``function``."""
    _kind, schema, name = function.identity
    signature = sql.SQL("{}()").format(qualified(schema or None, name)).as_string()
    query = (
        "select exists (select from pg_depend where refclassid = 'pg_proc'::regclass "
        "and refobjid = to_regprocedure(%(signature)s) and deptype = 'n')"
    )
    return bool(connection.exec_driver_sql(query, {"signature": signature}).scalar())


def attach(table: Table, *objects: DatabaseObject) -> None:
    """Require ``objects`` for ``table`` and have ``create_all``/``drop_all`` manage them."""
    require(table, *objects)
    if not event.contains(table, "after_create", _create_for_table):
        event.listen(table, "after_create", _create_for_table)
    metadata = table.metadata
    if not event.contains(metadata, "after_drop", _drop_unused_functions):
        event.listen(metadata, "after_drop", _drop_unused_functions)
