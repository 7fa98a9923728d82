"""Session hooks: ORM filters on every load path, checks at flush, the tenant per transaction.

``create_sessionmaker(engine)`` (or ``install_session_hooks(factory)``) gives sessions that:

- add ``deleted_at IS NULL`` and ``tenant_id = <current tenant>`` to every ORM SELECT, UPDATE and
  DELETE with ``with_loader_criteria`` (joins, aliases, relationship loads, EXISTS from
  ``has()``/``any()``, subqueries and CTEs included), and hide such rows when ``Session.get`` or a
  many-to-one lazy load finds them in the identity map;
- turn ``session.delete(obj)`` and ORM bulk ``delete()`` on soft-delete models into soft deletes;
- fill in ``tenant_id`` on new objects and refuse, at flush, writes to another tenant's rows;
- run ``SELECT set_config('app.tenant_id', <tenant id>, true)`` at the start of every
  transaction, in one query with its ``BEGIN`` (and again, the id a bound parameter, if the
  tenant changes inside one), never a session-level ``SET``;
- turn PostgreSQL's row-level security refusals into ``CrossTenantWriteError`` /
  ``TenantNotSetError``.

One module per job: ``_reads`` (filters and the identity-map guard), ``_writes`` (checks at
flush), ``_tenant_setting`` (``app.tenant_id`` per transaction; ``_begin`` sends it with ``BEGIN``),
``_refusals`` (database errors),
``_installation`` (hooking factories, classes and engines); every use of SQLAlchemy's private API
is in ``_sqlalchemy_private``.
"""

from __future__ import annotations

from pgkeel.session._installation import (
    create_sessionmaker,
    install_engine_hooks,
    install_session_hooks,
)
from pgkeel.session._reads import IncludeDeleted
from pgkeel.session._session_class import PgkeelSession
from pgkeel.session._tenant_setting import TENANT_RECORD

__all__ = [
    "TENANT_RECORD",
    "IncludeDeleted",
    "PgkeelSession",
    "create_sessionmaker",
    "install_engine_hooks",
    "install_session_hooks",
]
