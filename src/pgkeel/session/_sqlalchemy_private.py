"""Every use of SQLAlchemy's private API by the session hooks, each with the reason it is needed.

SQLAlchemy offers no public way to read a statement's loader options, its ``RETURNING`` columns,
every table it mentions, or to intercept identity-map hits. Keeping those reads here means a
SQLAlchemy upgrade that moves one of them breaks this module only, and its tests say which.
Every function is best effort on shapes it does not know: it returns nothing rather than raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.base import LoaderCallableStatus, PassiveFlag
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util import EMPTY_DICT

if TYPE_CHECKING:
    from sqlalchemy.orm._typing import OrmExecuteOptionsParameter
    from sqlalchemy.orm.interfaces import ORMOption
    from sqlalchemy.orm.session import _BindArguments
    from sqlalchemy.orm.state import InstanceState
    from sqlalchemy.sql.base import Executable

VisibleCheck: TypeAlias = Callable[[object, Mapping[str, Any]], bool]
"""Whether an object found in the identity map may be returned, given the execution options."""


def statement_options(statement: Executable) -> tuple[ORMOption, ...]:
    """The options passed to ``statement.options(...)``.

    Private: ``Executable._with_options``. There is no public getter; a bulk ``delete()`` turned
    into a soft-delete ``UPDATE`` must carry the caller's options over.
    """
    return tuple(getattr(statement, "_with_options", ()))


def statement_returning(statement: Executable) -> tuple[Any, ...]:
    """The columns of ``statement.returning(...)``.

    Private: ``UpdateBase._returning``. Needed for the same rewrite as ``statement_options``.
    """
    return tuple(getattr(statement, "_returning", ()))


def option_mappers(statement: Executable) -> set[Mapper[Any]]:
    """Mappers named by loader options (``joinedload(A.bs)`` names B).

    Private: a loader option's ``context`` holds ``_LoadElement``s whose ``path`` is a
    ``PathRegistry`` with a ``path`` tuple of mappers and attributes.
    ``ORMExecuteState.all_mappers`` lists only the statement's entities; an eager load of a
    tenant model from a non-tenant one still needs a tenant.
    """
    found: set[Mapper[Any]] = set()
    for option in statement_options(statement):
        for element in getattr(option, "context", ()):
            for token in getattr(getattr(element, "path", None), "path", ()):
                mapper = getattr(token, "mapper", None)
                if isinstance(mapper, Mapper):
                    found.add(mapper)
    return found


def statement_tables(statement: Executable) -> list[Any]:
    """Every table a statement reads or writes: joins, subqueries, EXISTS, column references.

    Private: ``sqlalchemy.sql.util.find_tables``, an internal traversal helper (not documented).
    Writing the same visitor by hand would depend on the same internal element classes.
    """
    found = find_tables(
        statement,  # type: ignore[arg-type]
        check_columns=True,
        include_aliases=True,
        include_joins=True,
        include_selects=True,
        include_crud=True,
    )
    return [table for table in found if table is not None and hasattr(table, "info")]


def guarded_identity_lookup(visible: VisibleCheck) -> Callable[..., Any]:
    """``Session._identity_lookup`` that hides objects ``visible`` rejects.

    Private: ``Session._identity_lookup`` with its signature, ``PassiveFlag``,
    ``LoaderCallableStatus`` and ``EMPTY_DICT``. ``Session.get`` and many-to-one lazy loads
    return an object found in the identity map without SQL, so no ``do_orm_execute`` filter sees
    them; this method is the one place both pass through. When the caller may not emit SQL
    (``passive`` without ``SQL_OK``) the object is returned as is, as SQLAlchemy would.
    """

    def _identity_lookup(  # noqa: PLR0913, PLR0917  # SQLAlchemy's signature
        self: Session,
        mapper: Mapper[Any],
        primary_key_identity: Any | tuple[Any, ...],  # noqa: ANN401  # SQLAlchemy's signature
        identity_token: Any = None,  # noqa: ANN401
        passive: PassiveFlag = PassiveFlag.PASSIVE_OFF,
        lazy_loaded_from: InstanceState[Any] | None = None,
        execution_options: OrmExecuteOptionsParameter = EMPTY_DICT,
        bind_arguments: _BindArguments | None = None,
    ) -> object | LoaderCallableStatus | None:
        found: object = Session._identity_lookup(
            self,
            mapper,
            primary_key_identity,
            identity_token=identity_token,
            passive=passive,
            lazy_loaded_from=lazy_loaded_from,
            execution_options=execution_options,
            bind_arguments=bind_arguments,
        )
        if found is None or isinstance(found, LoaderCallableStatus):
            return found
        if not passive & PassiveFlag.SQL_OK or visible(found, execution_options):
            return found
        return None

    return _identity_lookup
