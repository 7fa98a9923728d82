"""The tenant in the database: ``app.tenant_id`` set per transaction, kept right on every statement.

``set_config('app.tenant_id', <tenant id>, true)`` runs at the start of every transaction of a
hooked session or Core connection (with its ``BEGIN``, in one query: ``_begin``), empty when
no tenant is set, so a value left on a pooled connection by a session-level ``SET`` never reaches
the transaction; it runs again before a statement whenever the tenant changed inside one, and
after a ``ROLLBACK TO SAVEPOINT`` (which may restore an earlier value) or a ``COMMIT AND CHAIN``
(a new transaction the driver does not see). A text of several statements with transaction
control among them is refused: the statements after it would run before the setting.
``Connection.info[TENANT_RECORD]`` remembers what is in force, for the transaction in progress
only (``current_transaction``). ``AUTOCOMMIT`` statements cannot
carry a transaction-local value: in a tenant context they are refused, outside one each runs in a
transaction that cleared the value first (``_autocommit``).
``ALL_TENANTS`` is refused on a role that row-level security binds, on every path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pgkeel.errors import TenantNotSetError
from pgkeel.session._autocommit import begin_cleared
from pgkeel.session._begin import SET_TENANT_DBAPI, begin_with_tenant
from pgkeel.session._dbapi import current_transaction, driver_of, fetch_one, role_bypasses_rls
from pgkeel.session._reads import UNKNOWN
from pgkeel.session._statement_head import statement_head, statement_heads
from pgkeel.tenancy import ALL_TENANTS, TenantScope, current_tenant, setting_value

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

TENANT_RECORD: Final = "pgkeel_tenant_setting"
"""``Connection.info`` key: (transaction, the tenant scope in force in it).

The scope is a tenant id, ``ALL_TENANTS``, None (no tenant: the setting is empty) or ``UNKNOWN``
(a rolled back savepoint may have restored an earlier value). A record whose transaction is not
``current_transaction(connection)`` was made in an earlier transaction and says nothing.
"""
_TRANSACTION_CONTROL: Final = ("ROLLBACK", "RELEASE", "SAVEPOINT", "COMMIT", "BEGIN", "END")
_RESTORES_SETTINGS: Final = ("ROLLBACK", "ABORT", "COMMIT", "END")
"""Statements after which the setting may hold another value: ``ROLLBACK TO SAVEPOINT`` (an
earlier one), ``COMMIT AND CHAIN`` (none of the transaction's own: a session-level one)."""
_RESTORING_INITIALS: Final = frozenset("RrAaCcEe")
"""Their first letters: most statements are told apart by one character, before any copy."""
_ENDS_OR_RESTORES: Final = (
    *_RESTORES_SETTINGS,
    "BEGIN",
    "START",
    "SAVEPOINT",
    "RELEASE",
    "PREPARE",
)


def _require_bypass(connection: Connection) -> None:
    """``ALL_TENANTS`` only works on a role that bypasses row-level security: say so if not."""
    role, bypasses = role_bypasses_rls(connection)
    if not bypasses:
        raise TenantNotSetError(
            f"tenant_context(ALL_TENANTS) on role {role!r}, which is subject to row-level "
            "security: every tenant table would look empty. ALL_TENANTS turns off pgkeel's ORM "
            "filter only; the database still needs a role that bypasses row-level security. "
            "Fix: run system jobs with their own engine, connected as a role created WITH "
            "BYPASSRLS (see docs/multi-tenancy.md), or use tenant_context(tenant_id) per tenant."
        )


def _is_autocommit(connection: Connection) -> bool:
    return bool(getattr(driver_of(connection), "autocommit", False))


def _refuse_autocommit(scope: TenantScope) -> None:
    raise TenantNotSetError(
        f"A statement in tenant_context({scope}) on a connection in AUTOCOMMIT mode: every "
        "statement is its own transaction there, so the tenant that pgkeel passes with "
        "set_config(..., true) would not reach it, and a value left on the connection by a "
        "session-level SET could. Fix: run tenant work in a transaction (drop "
        "isolation_level='AUTOCOMMIT' from this engine or connection; engine.begin() or a "
        "Session)."
    )


def _set_tenant(connection: Connection, scope: TenantScope | None) -> None:
    """``set_config('app.tenant_id', <scope's value>, true)``, remembered for the transaction.

    At the start of a transaction it goes with ``BEGIN``, in the round trip psycopg would make
    for ``BEGIN`` alone; inside a transaction it is a query of its own.
    """
    if scope is ALL_TENANTS:
        _require_bypass(connection)
    value = setting_value(scope)
    if not begin_with_tenant(connection, value):
        fetch_one(connection, SET_TENANT_DBAPI, value)
    # The driver is in the transaction now (it was not in AUTOCOMMIT: see the callers).
    connection.info[TENANT_RECORD] = (connection.get_transaction(), scope)


def begin_tenant(connection: Connection) -> None:
    """A transaction began on ``connection``: pass the tenant to PostgreSQL for it only."""
    scope = current_tenant()
    if _is_autocommit(connection):
        _autocommit_statement(connection, scope)
        return
    _set_tenant(connection, scope)


def _autocommit_statement(connection: Connection, scope: TenantScope | None) -> None:
    """In AUTOCOMMIT mode: refuse a tenant; ALL_TENANTS needs a role that bypasses RLS."""
    if scope is not None and scope is not ALL_TENANTS:
        _refuse_autocommit(scope)
    if scope is ALL_TENANTS:
        _require_bypass(connection)


def _in_force(connection: Connection, info: dict[Any, Any]) -> object:
    """The scope set in the transaction in progress; ``UNKNOWN`` if none was set in it.

    A record made in an earlier transaction holds that transaction's object, which is never the
    one in progress (the record keeps it alive, so its identity cannot be reused): such records
    are ignored, not cleared, and a pooled connection's next transaction writes over them.
    """
    record = info.get(TENANT_RECORD)
    if record is None:
        return UNKNOWN
    transaction, scope = record
    if transaction is None or transaction is not current_transaction(connection):
        return UNKNOWN
    return scope


def _restores_settings(head: str) -> bool:
    """A ``ROLLBACK`` (``TO SAVEPOINT``), ``ABORT``, ``COMMIT`` or ``END`` (``AND CHAIN``)."""
    return head[:1] in _RESTORING_INITIALS and head[:8].upper().startswith(_RESTORES_SETTINGS)


def _refuse_control_among_statements(statement: str) -> None:
    """Refuse a text of several statements with transaction control among them.

    PostgreSQL runs them in one go: after a ``COMMIT`` (a new transaction, without the tenant)
    or a ``ROLLBACK TO SAVEPOINT`` (an earlier tenant) in the middle, the statements that follow
    run before pgkeel can set the tenant again, with whatever value the connection holds.
    """
    heads = statement_heads(statement)
    if len(heads) < 2 or not any(h.upper().startswith(_ENDS_OR_RESTORES) for h in heads):
        return
    raise TenantNotSetError(
        f"A text of {len(heads)} statements with transaction control among them "
        f"({'; '.join(head.split(maxsplit=1)[0] for head in heads)}): the statements after a "
        "COMMIT, ROLLBACK (TO SAVEPOINT), BEGIN or SAVEPOINT would run before pgkeel sets the "
        "tenant again, with whatever value the connection holds. Fix: send transaction control "
        "as a statement of its own (connection.commit(), session.begin_nested(), or one "
        "exec_driver_sql per statement)."
    )


def sync_tenant(connection: Connection, statement: str) -> bool:
    """Before a statement reaches the driver: set the tenant at a transaction's start or on change.

    Returns True when the statement, in ``AUTOCOMMIT``, is to run in the transaction that
    ``begin_cleared`` opened for it (the caller ends it with ``commit_cleared``).
    """
    try:
        info = connection.info
    except NotImplementedError:
        return False  # the dialect's own checks on a new driver connection, before the pool has it
    if ";" in statement:
        _refuse_control_among_statements(statement)
    head = statement_head(statement)
    if _restores_settings(head):
        # Whatever the context is now, the savepoint may bring back a value set before it, in
        # another context: the statement after it sets the tenant again.
        info[TENANT_RECORD] = (current_transaction(connection), UNKNOWN)
        return False
    scope = current_tenant()
    in_force = _in_force(connection, info)
    if in_force is scope or in_force == scope:
        return False
    if head[:10].upper().startswith(_TRANSACTION_CONTROL):
        return False  # e.g. SAVEPOINT, COMMIT: the statement after it sets the tenant
    if _is_autocommit(connection):
        _autocommit_statement(connection, scope)
        return begin_cleared(connection, statement)
    _set_tenant(connection, scope)
    return False
