"""``PgkeelSession``: the session class whose identity-map hits and bulk writes obey pgkeel."""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session

from pgkeel.session import _sqlalchemy_private as private
from pgkeel.session._bulk import checked_bulk_save
from pgkeel.session._reads import guarded_identity_lookup, guarded_merge

guarded_bulk_save: Final = private.guarded_bulk_save(checked_bulk_save)
"""``Session._bulk_save_mappings`` that checks tenants first; ``install_session_hooks`` adds it."""


class PgkeelSession(Session):
    """A ``Session`` whose identity-map hits and legacy bulk writes obey the tenant rules.

    The filters of the session hooks apply to SQL; an object already in the identity map is
    returned by ``Session.get`` and by many-to-one lazy loads without SQL. This subclass hides
    such an object when the current tenant or its ``deleted_at`` would have filtered it out, and
    ``merge`` refuses to return one.
    ``bulk_save_objects``, ``bulk_insert_mappings`` and ``bulk_update_mappings`` skip the flush;
    their rows get the same tenant checks as a flush.
    """

    _identity_lookup = guarded_identity_lookup
    _bulk_save_mappings = guarded_bulk_save
    merge = guarded_merge
