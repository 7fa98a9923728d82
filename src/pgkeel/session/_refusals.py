"""PostgreSQL's refusals for tenant reasons, reported as pgkeel's errors.

Two refusals look alike (``InsufficientPrivilege``, "row-level security"): a row that the
policy's ``WITH CHECK`` rejects (a write: ``CrossTenantWriteError`` in a tenant context,
``TenantNotSetError`` outside one), and a read refused because ``row_security`` is off and the
query would be filtered (``ReadRefusedError``). A ``NULL`` ``tenant_id`` (no tenant set for a
raw ``INSERT``) is reported as ``TenantNotSetError``, and a conflict update that met another
tenant's row (``_upserts``) as ``CrossTenantWriteError``.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Final

import psycopg.errors

from pgkeel.errors import CrossTenantWriteError, ReadRefusedError, TenantNotSetError
from pgkeel.session._upserts import refused_conflict
from pgkeel.tenancy import TENANT_COLUMN, current_tenant

if TYPE_CHECKING:
    from sqlalchemy.engine import ExceptionContext

_READ_REFUSAL: Final = "query would be affected by row-level security policy"
_TABLE_IN_MESSAGE: Final = re.compile(r'for table "([^"]+)"')


def _is_rls_refusal(error: BaseException) -> bool:
    return isinstance(error, psycopg.errors.InsufficientPrivilege) and "row-level security" in str(
        error
    )


def _is_missing_tenant(error: BaseException) -> bool:
    return (
        isinstance(error, psycopg.errors.NotNullViolation)
        and error.diag.column_name == TENANT_COLUMN
    )


def _table(error: BaseException) -> str:
    named = getattr(getattr(error, "diag", None), "table_name", None)
    if named:
        return str(named)
    found = _TABLE_IN_MESSAGE.search(str(error))
    return found.group(1) if found else "a tenant table"


def _refused_read(table: str) -> ReadRefusedError:
    return ReadRefusedError(
        f"PostgreSQL refused to read {table!r}: row_security is off in this session, and the "
        "query would be filtered by row-level security, so PostgreSQL raises instead of "
        "returning the rows. Nothing was written. Fix: leave row_security on (turning it off "
        "never widens what a role sees); a system job that must read every tenant connects as a "
        "role WITH BYPASSRLS and runs under tenant_context(ALL_TENANTS)."
    )


def _refused_write(table: str) -> BaseException:
    scope = current_tenant()
    if isinstance(scope, uuid.UUID):
        return CrossTenantWriteError(
            f"PostgreSQL refused a row of {table!r}: row-level security accepts only rows of "
            f"the current tenant {scope}, and this row names another tenant_id. Fix: write "
            "rows of another tenant inside its own tenant_context."
        )
    return TenantNotSetError(
        f"PostgreSQL refused a row of {table!r}: no tenant is set for this transaction "
        f"({'ALL_TENANTS on a role subject to row-level security' if scope else 'no context'}), "
        "and row-level security accepts no row then. Fix: write inside "
        "`with pgkeel.tenant_context(tenant_id):`."
    )


def translate_error(context: ExceptionContext) -> BaseException | None:
    """``handle_error``: the database refused a row for tenant reasons -> pgkeel's error."""
    error = context.original_exception
    if _is_rls_refusal(error) and _READ_REFUSAL in str(error):
        return _refused_read(_table(error))
    if _is_rls_refusal(error) or _is_missing_tenant(error):
        return _refused_write(_table(error))
    return refused_conflict(error)
