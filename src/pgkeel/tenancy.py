"""Multi-tenancy: ``tenant_id`` on tenant rows, a tenant per context, row-level security behind.

``with tenant_context(tenant_id):`` sets the current tenant in a ``ContextVar`` (each thread and
each asyncio task sees its own). pgkeel's session hooks filter ORM reads to that tenant, fill in
``tenant_id`` on new objects and refuse writes to other tenants' rows; each transaction also
passes the tenant to PostgreSQL with ``set_config('app.tenant_id', <tenant id>, true)``, and
every tenant table has row-level security ENABLED and FORCED with a policy comparing
``tenant_id`` with that setting. Raw SQL and Core therefore see only the current tenant's rows,
and no tenant at all means no rows and no writes.

``ALL_TENANTS`` turns the ORM filter off for system jobs. It does not open the database: the
policy has no "all tenants" branch, so a job under ``ALL_TENANTS`` must connect as a role that
bypasses row-level security (see docs/multi-tenancy.md), and pgkeel refuses to start such a
transaction on the runtime role rather than silently return nothing.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, get_args

from sqlalchemy import (
    UUID,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, Mapper, declared_attr, mapped_column

from pgkeel import rules
from pgkeel.dbobjects import Policy, RowLevelSecurity, attach
from pgkeel.errors import ModelDefinitionError, TenantNotSetError
from pgkeel.indexes import (
    detach_unique_rule,
    key_names,
    led_by,
    rule_keys,
    unique_index_like,
    unique_rules,
)
from pgkeel.mixins import BaseModel
from pgkeel.naming import allow, allows, index_name, written_name

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlalchemy import ColumnElement, MetaData, Table

TENANT_COLUMN: Final = "tenant_id"
TENANT_SETTING: Final = "app.tenant_id"
DEFAULT_TENANT_FOREIGN_KEY: Final = "tenants.id"
POLICY_NAME: Final = "tenant_isolation"
TENANT_INFO: Final = "pgkeel_tenant"
INHERITED_TENANT_INFO: Final = "pgkeel_tenant_parent"
"""``Table.info`` key of a joined-table subclass table of a tenant model: the parent's key."""
TENANT_LEADING_RULE: Final = rules.TENANT_LEADING_COLUMN
SAME_TENANT_INFO: Final = "pgkeel_same_tenant"
"""``info`` key of a foreign key made by ``tenant_foreign_key``: it includes ``tenant_id``."""
PENDING_KEYS_INFO: Final = "pgkeel_pending_tenant_keys"
"""``MetaData.info`` key: tenant keys that same-tenant foreign keys wait for, by table key."""
ALL_ROWS_UNIQUE_RULE: Final = rules.ALL_ROWS_UNIQUE
"""Opt-out id: keep a unique rule over deleted rows too (no ``WHERE deleted_at IS NULL``)."""
CURRENT_TENANT_SQL: Final = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
"""The current tenant as PostgreSQL sees it: read once per statement, NULL when unset or empty."""
TENANT_DEFAULT_SQL: Final = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
"""Server default of ``tenant_id``: raw ``INSERT``s inside a tenant context need no tenant_id."""


_POSTGRESQL_IDENTIFIERS = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


class AllTenants:
    """The type of ``ALL_TENANTS``: one instance, compared by identity."""

    _instance: ClassVar[AllTenants | None] = None

    def __new__(cls) -> AllTenants:
        """Always the same instance."""
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ALL_TENANTS"

    def __reduce__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS: Final = AllTenants()
"""``tenant_context(ALL_TENANTS)``: the explicit, greppable scope of system jobs."""

TenantScope = uuid.UUID | AllTenants
_current: ContextVar[TenantScope | None] = ContextVar("pgkeel_tenant", default=None)


def _as_scope(tenant_id: object) -> TenantScope:
    if isinstance(tenant_id, AllTenants | uuid.UUID):
        return tenant_id
    if isinstance(tenant_id, str):
        try:
            return uuid.UUID(tenant_id)
        except ValueError:
            pass
    raise TypeError(
        f"tenant_context({tenant_id!r}): a tenant id must be a uuid.UUID (or its string form), "
        "or pgkeel.ALL_TENANTS for a system job. There is no 'no tenant' context: code that "
        "must not see tenant rows simply runs outside tenant_context."
    )


@contextmanager
def tenant_context(tenant_id: uuid.UUID | str | AllTenants) -> Iterator[TenantScope]:
    """Run the block as ``tenant_id`` (a system job: ``ALL_TENANTS``); nests and restores."""
    token = _current.set(_as_scope(tenant_id))
    try:
        yield _current.get()  # type: ignore[misc]  # just set: never None here
    finally:
        _current.reset(token)


def current_tenant() -> TenantScope | None:
    """The tenant of the running context, ``ALL_TENANTS``, or ``None`` outside any context."""
    return _current.get()


def require_tenant(what: str) -> TenantScope:
    """The current tenant scope, or ``TenantNotSetError`` naming ``what`` needed it."""
    scope = _current.get()
    if scope is None:
        raise TenantNotSetError(
            f"{what} needs a tenant, and no tenant_context is active: pgkeel never falls back to "
            "all tenants. Fix: wrap the code in `with pgkeel.tenant_context(tenant_id):` (for "
            "example in your request middleware), or `with pgkeel.tenant_context("
            "pgkeel.ALL_TENANTS):` in a system job that connects with a role that bypasses "
            "row-level security."
        )
    return scope


def setting_value(scope: TenantScope | None) -> str:
    """The text pgkeel stores in ``app.tenant_id`` for ``scope``: empty unless one tenant."""
    return str(scope) if isinstance(scope, uuid.UUID) else ""


def is_tenant_table(table: Table) -> bool:
    """Whether ``table`` holds rows of many tenants (it has a ``tenant_id`` column)."""
    return bool(table.info.get(TENANT_INFO)) or TENANT_COLUMN in table.c


def tenant_row_security(table: Table) -> RowLevelSecurity:
    """Row-level security ENABLED and FORCED on ``table`` (FORCE binds the table owner too)."""
    return RowLevelSecurity(table=table.name, schema=table.schema)


def tenant_policy(table: Table) -> Policy:
    """The policy that shows and accepts only the rows of the tenant set for the transaction."""
    condition = f"{TENANT_COLUMN} = {CURRENT_TENANT_SQL}"
    return Policy(
        table=table.name,
        name=POLICY_NAME,
        using=condition,
        with_check=condition,
        schema=table.schema,
    )


def tenant_first(columns: Sequence[str]) -> list[str]:
    """``columns`` led by ``tenant_id`` (added when missing, moved first when elsewhere)."""
    return [TENANT_COLUMN, *(name for name in columns if name != TENANT_COLUMN)]


def _per_tenant(table: Table, rule: UniqueConstraint | Index) -> None:
    """The copy of unique ``rule`` led by ``tenant_id``, added to ``table``."""
    lead = table.c[TENANT_COLUMN]
    if isinstance(rule, UniqueConstraint):
        UniqueConstraint(
            *led_by(rule_keys(rule), lead),
            name=written_name(rule),
            info=dict(rule.info),
            deferrable=rule.deferrable,
            initially=rule.initially,
            **rule.dialect_kwargs,
        )
        return
    names = [getattr(key, "name", "") or "" for key in led_by(rule_keys(rule), lead)]
    name = written_name(rule) or index_name(table.name, names, unique=True)
    unique_index_like(table, rule, name, lead=lead)


def lead_unique_with_tenant(table: Table) -> None:
    """Make every unique rule of a tenant table per tenant: it starts with tenant_id.

    Expressions, operator classes, ``INCLUDE``, ``NULLS NOT DISTINCT`` and a partial index's
    predicate are kept: only ``tenant_id`` is put first.
    """
    for rule in unique_rules(table):
        if key_names(rule)[:1] == [TENANT_COLUMN] or allows(rule, TENANT_LEADING_RULE):
            continue
        detach_unique_rule(table, rule)
        _per_tenant(table, rule)


def _tenant_index(table: Table) -> None:
    """Index ``tenant_id`` unless another pgkeel index already leads with it."""
    if "deleted_at" in table.c:
        return  # SoftDeleteMixin's (tenant_id, is_deleted) index serves the foreign key too
    leading = {tuple(column.name for column in index.columns)[:1] for index in table.indexes}
    if (TENANT_COLUMN,) not in leading:
        Index(index_name(table.name, [TENANT_COLUMN]), table.c[TENANT_COLUMN])


def tenant_id_column(foreign_key: str | None = DEFAULT_TENANT_FOREIGN_KEY) -> Column[uuid.UUID]:
    """A ``tenant_id`` column for a Core ``Table`` (an association table, for example)."""
    return Column(
        TENANT_COLUMN,
        UUID(as_uuid=True),
        *([ForeignKey(foreign_key)] if foreign_key else []),
        nullable=False,
        server_default=text(TENANT_DEFAULT_SQL),
        comment="Owning tenant; row-level security shows only the current tenant's rows.",
    )


OnDelete = Literal["CASCADE", "RESTRICT", "NO ACTION"]
"""What a same-tenant foreign key may do on delete: nothing that would change ``tenant_id``."""
_KEEPS_TENANT_ID: Final = get_args(OnDelete)


def tenant_foreign_key(
    column: str,
    target: str,
    *,
    ondelete: OnDelete | None = None,
    name: str | None = None,
) -> ForeignKeyConstraint:
    """``(tenant_id, column) -> (<table>.tenant_id, target)``: a reference within one tenant.

    Put it in ``__table_args__`` of a tenant model (or a Core tenant ``Table``) instead of a
    ``ForeignKey`` on ``column``; ``target`` names the referenced column like ``ForeignKey``
    does (``"customers.id"``, ``"billing.customers.id"``). PostgreSQL then rejects a row that
    points at another tenant's row, for every role, superusers included. pgkeel adds the
    index ``(tenant_id, column)`` to this table and the unique key ``(tenant_id, id)`` that the
    foreign key needs to the referenced tenant table.
    """
    table, _, referred = target.rpartition(".")
    if not table or not referred:
        raise ValueError(
            f"tenant_foreign_key({column!r}, {target!r}): target names a column as "
            "'table.column' (or 'schema.table.column'), e.g. 'customers.id'."
        )
    if ondelete is not None and ondelete.upper() not in _KEEPS_TENANT_ID:
        raise ValueError(
            f"tenant_foreign_key({column!r}, {target!r}, ondelete={ondelete!r}): SET NULL and "
            "SET DEFAULT would change tenant_id as well, which is part of the key. Fix: use "
            f"{', '.join(_KEEPS_TENANT_ID)}, or clear {column} in the application."
        )
    return ForeignKeyConstraint(
        [TENANT_COLUMN, column],
        [f"{table}.{TENANT_COLUMN}", target],
        name=name,
        ondelete=ondelete,
        info={SAME_TENANT_INFO: True},
    )


def _referred(fk: ForeignKeyConstraint) -> tuple[str, tuple[str, ...]]:
    """The key of the table a foreign key references (``schema.name``) and its columns."""
    targets = [element.target_fullname.rpartition(".") for element in fk.elements]
    return targets[0][0], tuple(column for _, _, column in targets)


def _starts_with(table: Table, columns: Sequence[str], *, unique: bool) -> bool:
    """Whether a (unique, non-partial when ``unique``) key of ``table`` starts with ``columns``."""
    keys: list[Index | UniqueConstraint | PrimaryKeyConstraint] = [
        *(c for c in table.constraints if isinstance(c, UniqueConstraint | PrimaryKeyConstraint)),
        *(
            i
            for i in table.indexes
            if not unique or (i.unique and i.dialect_options["postgresql"]["where"] is None)
        ),
    ]
    for key in keys:
        names = [getattr(column, "name", "") for column in key.columns]
        exact = not unique or len(names) == len(columns)
        if exact and set(names[: len(columns)]) == set(columns):
            return True
    return False


def _add_tenant_key(table: Table, columns: tuple[str, ...]) -> None:
    """The unique key a same-tenant foreign key references: over all rows, deleted ones too."""
    if TENANT_COLUMN not in table.c:
        raise ModelDefinitionError(
            f"A same-tenant foreign key references {table.name}({', '.join(columns)}), but "
            f"{table.name!r} has no {TENANT_COLUMN} column: only tenant tables can be referenced "
            "with tenant_foreign_key. Fix: make it a tenant table (TenantMixin), or reference it "
            "with an ordinary ForeignKey."
        )
    if not _starts_with(table, columns, unique=True):
        UniqueConstraint(*(table.c[column] for column in columns), info=allow(ALL_ROWS_UNIQUE_RULE))


def _refuse_plain_duplicate(table: Table, fk: ForeignKeyConstraint) -> None:
    """A ``ForeignKey`` on the column as well would be a second key, and need its own index."""
    reference = fk.elements[-1]
    for other in table.foreign_keys:
        if other.constraint is fk or other.parent is not reference.parent:
            continue
        if other.target_fullname == reference.target_fullname:
            raise ModelDefinitionError(
                f"{table.name}.{reference.parent.name} has both ForeignKey("
                f"{other.target_fullname!r}) and tenant_foreign_key({reference.parent.name!r}, "
                f"{reference.target_fullname!r}); the latter already references that row. Fix: "
                f"drop the ForeignKey from {reference.parent.name}."
            )


def _same_tenant_references(table: Table) -> None:
    """Index each same-tenant foreign key and give its referenced table the key it needs."""
    metadata = table.metadata
    for fk in sorted(table.foreign_key_constraints, key=lambda c: tuple(c.column_keys)):
        if not fk.info.get(SAME_TENANT_INFO):
            continue
        columns = [element.parent.name for element in fk.elements]
        _refuse_plain_duplicate(table, fk)
        if not _starts_with(table, columns, unique=False):
            Index(index_name(table.name, columns), *(table.c[column] for column in columns))
        parent, referred = _referred(fk)
        if parent in metadata.tables:
            _add_tenant_key(metadata.tables[parent], referred)
        else:
            _pending_keys(metadata).setdefault(parent, set()).add(referred)
    for referred in sorted(_pending_keys(metadata).pop(table.key, ())):
        _add_tenant_key(table, referred)


def _pending_keys(metadata: MetaData) -> dict[str, set[tuple[str, ...]]]:
    pending: dict[str, set[tuple[str, ...]]] = metadata.info.setdefault(PENDING_KEYS_INFO, {})
    return pending


def protect_tenant_table(table: Table) -> Table:
    """What ``TenantMixin`` does to its table, for a Core ``Table`` with a ``tenant_id`` column.

    Unique rules lead with ``tenant_id``, ``tenant_id`` is indexed, same-tenant foreign keys
    (``tenant_foreign_key``) are indexed and their referenced keys added, and row-level security
    with the tenant policy is attached (installed by ``create_all``, emitted by the Alembic
    plugin).
    """
    table.info[TENANT_INFO] = True
    lead_unique_with_tenant(table)
    _same_tenant_references(table)
    _tenant_index(table)
    attach(table, tenant_row_security(table), tenant_policy(table))
    return table


def _parent_key(table: Table, parent: Table) -> tuple[str, str]:
    """``(column of table, column of parent)`` of the foreign key that joins a subclass table."""
    for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
        if fk.column.table is parent:
            return fk.parent.name, fk.column.name
    raise ModelDefinitionError(
        f"Joined-table subclass table {table.name!r} has no foreign key to {parent.name!r}: "
        "row-level security of the subclass rows follows that key. Fix: declare the primary "
        f"key as mapped_column(ForeignKey('{parent.name}.id'), primary_key=True)."
    )


def inherited_policy(table: Table, parent: Table) -> Policy:
    """The policy of a joined-table subclass table: a row is visible when its parent row is.

    The sub-``SELECT`` on the parent table runs under the parent's own policy, so the tenant
    rule is written once, on the table that holds ``tenant_id``.
    """
    quote = _POSTGRESQL_IDENTIFIERS.quote
    column, parent_column = (quote(name) for name in _parent_key(table, parent))
    where = (
        quote(parent.name) if not parent.schema else f"{quote(parent.schema)}.{quote(parent.name)}"
    )
    condition = f"{column} IN (SELECT {parent_column} FROM {where})"  # noqa: S608  # quoted names
    return Policy(
        table=table.name,
        name=POLICY_NAME,
        using=condition,
        with_check=condition,
        schema=table.schema,
    )


def protect_inherited_table(table: Table, parent: Table) -> Table:
    """Row-level security on the own table of a joined-table subclass of a tenant model."""
    table.info[INHERITED_TENANT_INFO] = parent.key
    attach(table, tenant_row_security(table), inherited_policy(table, parent))
    return table


class TenantMixin:
    """``tenant_id uuid NOT NULL`` to the tenant table, row-level security, per-tenant uniques.

    The foreign key target is ``__tenant_foreign_key__`` (default ``"tenants.id"``; ``None`` for no
    foreign key). Unique rules declared on the model (``unique=True``, ``UniqueConstraint``)
    become unique per tenant: their columns are led by ``tenant_id``. Opt one out with
    ``info=pgkeel.naming.allow("tenant-leading-column")``.
    """

    __tenant_foreign_key__: ClassVar[str | None] = DEFAULT_TENANT_FOREIGN_KEY

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805  # declared_attr receives the class
        """The owning tenant; defaults in SQL to the tenant set for the transaction."""
        target = cls.__tenant_foreign_key__
        return mapped_column(
            *([ForeignKey(target)] if target else []),
            server_default=text(TENANT_DEFAULT_SQL),
            sort_order=-90,
            comment="Owning tenant; row-level security shows only the current tenant's rows.",
        )

    @classmethod
    def _pgkeel_setup_table(cls, table: Table) -> None:
        protect_tenant_table(table)

    @classmethod
    def _pgkeel_setup_inherited_table(cls, table: Table, parent: Table) -> None:
        protect_inherited_table(table, parent)


@event.listens_for(TenantMixin, "init", propagate=True)
def _assign_tenant(_target: object, _args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """A new object built inside ``tenant_context(t)`` belongs to ``t`` unless told otherwise."""
    scope = _current.get()
    if kwargs.get(TENANT_COLUMN) is None and isinstance(scope, uuid.UUID):
        kwargs[TENANT_COLUMN] = scope


def _attribute(mapper: Mapper[Any], column: ColumnElement[Any]) -> str:
    """``Class.attribute`` of a mapped column, for messages."""
    prop = mapper.get_property_by_column(column)
    return f"{mapper.class_.__name__}.{prop.key}"


@event.listens_for(TenantMixin, "mapper_configured", propagate=True)
def _refuse_tenant_copying_relationships(mapper: Mapper[Any], _class: type) -> None:
    """A relationship over a same-tenant foreign key must not write ``tenant_id`` itself.

    Inferred from ``(tenant_id, customer_id)``, SQLAlchemy would copy the related row's
    ``tenant_id`` into this one, and set it to NULL when the reference is removed.
    """
    for relationship in mapper.relationships:
        if relationship.viewonly or relationship.secondary is not None:
            continue
        pairs = relationship.synchronize_pairs
        if not any(a.name == b.name == TENANT_COLUMN for a, b in pairs):
            continue
        owner = mapper if relationship.direction.name == "MANYTOONE" else relationship.mapper
        keys = [_attribute(owner, b) for a, b in pairs if b.name != TENANT_COLUMN]
        raise ModelDefinitionError(
            f"relationship {relationship} is inferred over a foreign key that includes "
            f"{TENANT_COLUMN}: SQLAlchemy would copy {TENANT_COLUMN} from the related row, and "
            f"set it to NULL when the reference is removed. Fix: relationship(..., "
            f"foreign_keys={'[' + ', '.join(repr(k) for k in keys) + ']'}), on each side of a "
            "back_populates pair; the database still checks the tenant."
        )


class MultiTenantModel(TenantMixin, BaseModel):
    """Abstract base of tenant tables: ``id``, ``tenant_id``, ``created_at``, ``updated_at``."""

    __abstract__ = True
