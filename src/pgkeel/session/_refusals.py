"""PostgreSQL's refusals for tenant reasons, reported as pgkeel's errors."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import psycopg.errors

from pgkeel.errors import CrossTenantWriteError, TenantNotSetError
from pgkeel.tenancy import TENANT_COLUMN, current_tenant

if TYPE_CHECKING:
    from sqlalchemy.engine import ExceptionContext


def _is_rls_refusal(error: BaseException) -> bool:
    return isinstance(error, psycopg.errors.InsufficientPrivilege) and "row-level security" in str(
        error
    )


def _is_missing_tenant(error: BaseException) -> bool:
    return (
        isinstance(error, psycopg.errors.NotNullViolation)
        and error.diag.column_name == TENANT_COLUMN
    )


def translate_error(context: ExceptionContext) -> BaseException | None:
    """``handle_error``: the database refused a row for tenant reasons -> pgkeel's error."""
    error = context.original_exception
    if not (_is_rls_refusal(error) or _is_missing_tenant(error)):
        return None
    table = getattr(getattr(error, "diag", None), "table_name", None) or "a tenant table"
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
