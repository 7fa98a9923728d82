"""Soft delete: rows marked ``deleted_at``, hidden from the ORM, unique among live rows only.

With pgkeel's session hooks (``create_sessionmaker`` / ``install_session_hooks``) a soft-deleted
row is absent from every ORM load path, ``session.delete(obj)`` and ORM bulk ``delete()`` mark rows
instead of removing them, and ``hard_delete(session, obj)`` is the explicit way to remove one.
Unique rules declared once on the model (``unique=True``, ``UniqueConstraint``, a unique
``Index``) become partial unique indexes ``... WHERE deleted_at IS NULL``, so a deleted value can
be used again while two live rows still cannot share it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import FetchedValue, Index, UniqueConstraint, false, inspect
from sqlalchemy.orm import Mapped, mapped_column

from pgkeel.dbobjects import attach
from pgkeel.ddl import soft_delete_objects
from pgkeel.indexes import (
    detach_unique_rule,
    led_by,
    rule_keys,
    rule_predicate,
    unique_index_like,
    unique_rules,
)
from pgkeel.mixins import BaseModel
from pgkeel.naming import allows, index_name, written_name
from pgkeel.tenancy import (
    ALL_ROWS_UNIQUE_RULE,
    TENANT_COLUMN,
    TENANT_LEADING_RULE,
    tenant_first,
)

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.orm import Session

SOFT_DELETE_INFO: Final = "pgkeel_soft_delete"
INCLUDE_DELETED: Final = "include_deleted"
"""Execution option: ``select(...).execution_options(include_deleted=True)`` sees deleted rows."""
HARD_DELETE: Final = "hard_delete"
"""Execution option: an ORM bulk ``delete()`` with ``hard_delete=True`` removes the rows."""
HARD_DELETES_KEY: Final = "pgkeel_hard_deletes"


class SoftDeleteMixin:
    """``deleted_at timestamptz NULL`` and an indexed ``is_deleted boolean`` kept by a trigger.

    ``obj.soft_delete()`` and ``obj.restore()`` set and clear ``deleted_at``; with pgkeel's session
    hooks ``session.delete(obj)`` soft-deletes too. Raw SQL can filter on ``NOT is_deleted`` or on
    ``deleted_at IS NULL`` (the predicate of the partial unique indexes). ``is_deleted`` is set to
    ``deleted_at IS NOT NULL`` by a ``BEFORE INSERT OR UPDATE`` trigger (not a stored generated
    column, which would rewrite a table that holds rows when the mixin is added to it).
    """

    deleted_at: Mapped[datetime | None] = mapped_column(
        default=None,
        sort_order=103,
        comment="When the row was soft-deleted; NULL while it is live.",
    )
    is_deleted: Mapped[bool] = mapped_column(
        server_default=false(),
        server_onupdate=FetchedValue(),
        sort_order=104,
        comment="deleted_at IS NOT NULL, set by a trigger on every write.",
    )

    def soft_delete(self) -> None:
        """Mark the row deleted now (kept if it already is); flushed like any change."""
        if self.deleted_at is None:
            self.deleted_at = datetime.now(UTC)

    def restore(self) -> None:
        """Make a soft-deleted row live again."""
        self.deleted_at = None

    @classmethod
    def _pgkeel_setup_table(cls, table: Table) -> None:
        table.info[SOFT_DELETE_INFO] = True
        attach(table, *soft_delete_objects(table))
        unique_among_live_rows(table)
        _is_deleted_index(table)

    @classmethod
    def _pgkeel_mapper_args(cls) -> dict[str, Any]:
        return {"eager_defaults": True}


_DELETED_AT = re.compile(r"\bdeleted_at\b")


def _is_live_only(rule: Index | UniqueConstraint) -> bool:
    """Whether ``rule`` is a partial index whose predicate already says which rows it covers."""
    where = rule_predicate(rule)
    return where is not None and bool(_DELETED_AT.search(str(where)))


def _partial_unique_index(table: Table, rule: Index | UniqueConstraint) -> Index:
    """The ``UNIQUE ... WHERE deleted_at IS NULL [AND its own predicate]`` index for ``rule``.

    Expressions, operator classes, ``INCLUDE`` and ``NULLS NOT DISTINCT`` are kept; on a tenant
    table the index leads with ``tenant_id`` unless the rule opts out.
    """
    tenant = TENANT_COLUMN in table.c and not allows(rule, TENANT_LEADING_RULE)
    lead = table.c[TENANT_COLUMN] if tenant else None
    keys = led_by(rule_keys(rule), lead)
    names = [getattr(key, "name", "") or "" for key in keys]
    return unique_index_like(
        table,
        rule,
        written_name(rule) or index_name(table.name, names, unique=True),
        lead=lead,
        where=table.c.deleted_at.is_(None),
    )


def unique_among_live_rows(table: Table) -> None:
    """Turn the table's unique rules into partial unique indexes over live rows."""
    for rule in unique_rules(table):
        if allows(rule, ALL_ROWS_UNIQUE_RULE) or _is_live_only(rule):
            continue
        detach_unique_rule(table, rule)
        _partial_unique_index(table, rule)


def _is_deleted_index(table: Table) -> None:
    """Index ``is_deleted`` (led by ``tenant_id`` on tenant tables, where it also serves the FK)."""
    names = ["is_deleted"]
    if TENANT_COLUMN in table.c:
        names = tenant_first(names)
    Index(index_name(table.name, names), *(table.c[name] for name in names))


def is_soft_delete_table(table: Table) -> bool:
    """Whether rows of ``table`` are soft-deleted."""
    return bool(table.info.get(SOFT_DELETE_INFO))


def hard_delete(session: Session, obj: object) -> None:
    """Delete ``obj``'s row for real at the next flush, even on a soft-delete model.

    The objects its ``delete`` cascade reaches go for real too (soft-deleted, they would still
    reference the removed row). No autoflush while ``session.delete`` loads the cascade: one
    would spend the marks before the flush they are for.
    """
    state = inspect(obj)
    marks = session.info.setdefault(HARD_DELETES_KEY, set())
    marks.add(state)
    with session.no_autoflush:
        session.delete(obj)
        marks.update(
            child for _obj, _mapper, child, _dict in state.mapper.cascade_iterator("delete", state)
        )


def is_marked_for_hard_delete(session: Session, obj: object) -> bool:
    """Whether ``hard_delete(session, obj)`` was called and not yet flushed."""
    return inspect(obj) in session.info.get(HARD_DELETES_KEY, ())


class SoftDeleteModel(SoftDeleteMixin, BaseModel):
    """Abstract base of soft-delete tables: ``id``, timestamps, ``deleted_at``, ``is_deleted``."""

    __abstract__ = True
