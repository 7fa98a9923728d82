"""Every use of SQLAlchemy's private API by the session hooks, each with the reason it is needed.

SQLAlchemy offers no public way to read a statement's loader options, its ``RETURNING`` columns,
every table it mentions, or to intercept identity-map hits. Keeping those reads here means a
SQLAlchemy upgrade that moves one of them breaks this module only, and its tests say which.
Every function is best effort on shapes it does not know: it returns nothing rather than raise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Engine, event
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.base import LoaderCallableStatus, PassiveFlag
from sqlalchemy.orm.interfaces import UserDefinedOption
from sqlalchemy.sql.base import _from_objects
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util import EMPTY_DICT

if TYPE_CHECKING:
    from sqlalchemy.orm import ORMExecuteState
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


def structure_key(statement: Executable) -> Any | None:  # noqa: ANN401  # a hashable tuple
    """What SQLAlchemy's compiled cache knows ``statement`` by: its structure without bound values.

    Private: ``ClauseElement._generate_cache_key`` (memoized on the statement: SQLAlchemy makes
    the same call when it looks the compiled SQL up, so asking it here costs nothing extra) and
    ``CacheKey.key``. Two statements with the same key compile to the same SQL, so what is
    decided from a statement's tables and entities can be kept per key. ``None`` for a statement
    SQLAlchemy does not cache.
    """
    generate = getattr(statement, "_generate_cache_key", None)
    found = generate() if generate is not None else None
    return None if found is None else found.key


def with_uncached_option(statement: Executable, option: UserDefinedOption) -> Executable:
    """``statement.options(option)`` that keeps the cache key ``statement`` has computed.

    Private: ``HasMemoized._set_memoized_attribute`` and the memo SQLAlchemy keeps under
    ``_generate_cache_key``. A user-defined option is never part of the cache key (SQLAlchemy
    leaves it out of the key's walk), so the copy's key is ``statement``'s: the copy gets it
    rather than walking the whole statement again. Any other option, or a statement without
    that memo, gets the plain ``options()`` copy.
    """
    generate = getattr(statement, "_generate_cache_key", None)
    copied = statement.options(option)
    remember = getattr(copied, "_set_memoized_attribute", None)
    if generate is None or remember is None or not isinstance(option, UserDefinedOption):
        return copied
    key = generate()
    remember("_generate_cache_key", lambda: key)
    return copied


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


def dml_value_rows(statement: Executable) -> list[Mapping[Any, Any] | Sequence[Any]]:
    """The rows of ``insert().values(...)`` / ``update().values(...)``: dicts or positional rows.

    Private: ``ValuesBase._values`` (one row, keyed by column) and ``_multi_values`` (the rows
    of a multi-row ``values([...])``, dicts or sequences in table column order). The ORM
    statement hook must see a ``tenant_id`` written by a statement before it runs, on roles that
    row-level security does not bind.
    """
    rows: list[Mapping[Any, Any] | Sequence[Any]] = []
    values = getattr(statement, "_values", None)
    if values:
        rows.append(values)
    for group in getattr(statement, "_multi_values", ()):
        rows.extend(group)
    return rows


def dml_extra_froms(statement: Executable) -> list[Any]:
    """The FROMs an UPDATE or DELETE reads besides its target (``UPDATE ... FROM``, ``USING``).

    Private: ``DMLWhereBase._where_criteria``, ``ValuesBase._values``, ``Delete._extra_froms``
    and ``sqlalchemy.sql.base._from_objects``, as SQLAlchemy's ``DMLState._make_extra_froms``
    reads them when it compiles the statement. SQLAlchemy applies loader criteria to the target
    mapper only, so the hooks filter these themselves. Cheap when the WHERE and the values
    name the target only (the common statement).
    """
    target = getattr(statement, "table", None)
    seen = set(getattr(target, "_cloned_set", ()))
    clauses = (*getattr(statement, "_where_criteria", ()), *_value_clauses(statement))
    found = []
    for from_ in (*getattr(statement, "_extra_froms", ()), *_from_objects(*clauses)):
        if not seen.intersection(from_._cloned_set):
            found.append(from_)
        seen.update(from_._cloned_set)
    return found


def runs_by_primary_key(state: ORMExecuteState) -> bool:
    """Whether an ORM UPDATE or DELETE runs "by primary key": one statement per parameter set.

    Private: ``update_delete_options._dml_strategy`` (the options object is public, the
    attribute is not), which SQLAlchemy sets to ``"bulk"`` for ``update(M)`` executed with a
    list of parameter sets before the hooks run. SQLAlchemy applies no loader criteria to it,
    only the statement's own WHERE, so the hooks must write their criteria there.
    """
    options = state.update_delete_options
    return getattr(options, "_dml_strategy", None) == "bulk"


def runs_core_only(state: ORMExecuteState) -> bool:
    """Whether an ORM UPDATE or DELETE runs with ``dml_strategy="core_only"``.

    Private: ``update_delete_options._dml_strategy``, as in ``runs_by_primary_key``. SQLAlchemy
    compiles such a statement as Core: it applies no loader criteria to its target (the ORM
    SELECTs inside it still get them), so the hooks must write the target's into its WHERE.
    """
    options = state.update_delete_options
    return getattr(options, "_dml_strategy", None) == "core_only"


def contains_eager_sources(statement: Executable) -> list[tuple[Mapper[Any], Any]]:
    """``(mapper, alias)`` for each ``contains_eager()`` among a statement's options.

    ``mapper`` is the one whose objects it builds from the statement's rows, ``alias`` the FROM
    object it names (``alias=``, or ``of_type()``), ``None`` for the mapper's own table as the
    statement joins it. Private: a loader option's ``context`` of ``_LoadElement``s, their
    ``local_opts["eager_from_alias"]`` (set by ``contains_eager()`` only) and their ``path``
    (a ``PathRegistry`` whose last token is the loaded mapper). Loader criteria reach the rows of
    an entity the statement joins, not those of a ``Table`` object the objects may be built from.
    """
    found: list[tuple[Mapper[Any], Any]] = []
    for option in statement_options(statement):
        for element in getattr(option, "context", None) or ():
            local = getattr(element, "local_opts", None) or {}
            if "eager_from_alias" not in local:
                continue
            tokens = getattr(getattr(element, "path", None), "path", ())
            mapper = getattr(tokens[-1], "mapper", None) if tokens else None
            if isinstance(mapper, Mapper):
                found.append((mapper, local["eager_from_alias"]))
    return found


def synchronizes_by_evaluating(state: ORMExecuteState) -> bool:
    """Whether SQLAlchemy would copy the written values into the session's objects.

    Private: ``update_delete_options._synchronize_session``: ``"auto"`` when the hooks run
    (SQLAlchemy makes it ``"evaluate"`` for a statement by primary key afterwards) or
    ``"evaluate"``. SQLAlchemy refuses that synchronization once a WHERE criterion is added to
    a statement by primary key; the hooks then expire the objects instead.
    """
    options = state.update_delete_options
    return getattr(options, "_synchronize_session", None) in {"auto", "evaluate"}


def _value_clauses(statement: Executable) -> list[Any]:
    values = getattr(statement, "_values", None) or {}
    return [value for value in values.values() if hasattr(value, "_from_objects")]


def conflict_update(statement: Executable) -> Any | None:  # noqa: ANN401  # OnConflictDoUpdate
    """The ``on_conflict_do_update(...)`` clause of a PostgreSQL ``insert()``, else ``None``.

    Private: ``Insert._post_values_clause``. Its ``update_values_to_set`` (the ``set_`` pairs)
    and ``update_whereclause`` are public attributes of the clause. The conflict update writes
    an existing row: the hooks check its values and limit it to the current tenant's live rows.
    """
    clause = getattr(statement, "_post_values_clause", None)
    return clause if hasattr(clause, "update_values_to_set") else None


def with_conflict_update_where(statement: Executable, where: Any) -> Executable:  # noqa: ANN401
    """A copy of an ``insert().on_conflict_do_update()`` whose ``DO UPDATE ... WHERE`` is ``where``.

    Private: ``Generative._generate``, ``Insert._post_values_clause`` and
    ``OnConflictDoUpdate.update_whereclause``; re-issuing ``on_conflict_do_update`` would need
    the clause's original arguments, which it does not keep.
    """
    clause = copy.copy(statement._post_values_clause)  # type: ignore[attr-defined]
    clause.update_whereclause = where
    generated = statement._generate()  # type: ignore[attr-defined]
    generated._post_values_clause = clause
    return generated  # type: ignore[no-any-return]


def orm_entity(column: Any) -> Any | None:  # noqa: ANN401  # a column expression
    """The mapped entity (class or ``aliased()``) a column or FROM was taken from, or ``None``.

    Private: ``ClauseElement._annotations["parententity"]``, which the ORM sets on the columns
    of ``Invoice.tenant_id`` (and on the table of ``join(Customer)`` or ``aliased(Customer)``);
    ``Invoice.__table__.c.tenant_id`` has none. Loader criteria reach the entity's rows only,
    never a ``Table`` object's.
    """
    return getattr(column, "_annotations", {}).get("parententity")


def insert_from_select(statement: Executable) -> tuple[list[Any], Any] | None:
    """``(names, select)`` of an ``insert().from_select(names, select)``, else ``None``.

    Private: ``Insert._select_names``; ``Insert.select`` is its companion attribute.
    """
    names = getattr(statement, "_select_names", None)
    if not names:
        return None
    return list(names), getattr(statement, "select", None)


def from_statement_element(statement: Executable) -> Any:  # noqa: ANN401  # a statement or text
    """The statement inside ``select(M).from_statement(<statement>)``.

    Private: ``FromStatement.element``. The loader criteria of the outer statement do not
    reach it, so the hook filters it itself (or refuses ``text()`` it cannot filter).
    """
    return getattr(statement, "element", None)


def with_from_statement_element(statement: Executable, element: Any) -> Executable:  # noqa: ANN401
    """A copy of a ``FromStatement`` whose inner statement is ``element``.

    Private: ``Generative._generate`` (a shallow copy, as every generative method makes) and
    ``FromStatement.element``.
    """
    copy = statement._generate()  # type: ignore[attr-defined]
    copy.element = element
    return copy  # type: ignore[no-any-return]


def map_with_expressions(statement: Executable, transform: Callable[[Any], Any]) -> Executable:
    """``statement`` with each ``with_expression()`` expression passed through ``transform``.

    Private: a loader option's ``context`` of ``_LoadElement``s, their ``strategy`` key
    (``(("query_expression", True),)``), their ``_extra_criteria`` (where ``with_expression``
    keeps its expression), ``_clone()``, and ``Executable._with_options``. The expression is
    compiled into the query as written, so loader criteria never reach its subqueries.
    """
    options = statement_options(statement)
    rewritten = tuple(_map_option(option, transform) for option in options)
    if all(new is old for new, old in zip(rewritten, options, strict=True)):
        return statement
    copy = statement._generate()  # type: ignore[attr-defined]
    copy._with_options = rewritten
    return copy  # type: ignore[no-any-return]


def has_with_expression(options: Sequence[Any]) -> bool:
    """Whether any of a statement's ``options`` is a ``with_expression()`` (see above).

    Plain loops, no copies: this runs for every ORM SELECT that has options (``joinedload()``,
    ``selectinload()``, ...), and most have no ``with_expression()``.
    """
    for option in options:
        for element in getattr(option, "context", None) or ():
            if _is_expression(element):
                return True
    return False


def _is_expression(element: Any) -> bool:  # noqa: ANN401  # a _LoadElement
    if not getattr(element, "_extra_criteria", None):
        return False
    return bool(dict(getattr(element, "strategy", None) or ()).get("query_expression"))


def _map_option(option: Any, transform: Callable[[Any], Any]) -> Any:  # noqa: ANN401
    context = getattr(option, "context", None)
    if not context:
        return option
    elements = tuple(_map_element(element, transform) for element in context)
    if all(new is old for new, old in zip(elements, context, strict=True)):
        return option
    copy = option._clone()
    copy.context = elements
    return copy


def _map_element(element: Any, transform: Callable[[Any], Any]) -> Any:  # noqa: ANN401
    if not _is_expression(element):
        return element
    copy = element._clone()
    copy._extra_criteria = tuple(transform(expression) for expression in element._extra_criteria)
    return copy


def add_where(select: Any, conditions: Sequence[Any]) -> None:  # noqa: ANN401  # a Select
    """AND ``conditions`` into the WHERE clause of ``select``, in place.

    Private: ``Select._where_criteria``. Only used on the private copy that
    ``sqlalchemy.sql.visitors.cloned_traverse`` hands to its visitor, where the public
    ``Select.where()`` (which returns a new object) cannot replace the node.
    """
    select._where_criteria = (*select._where_criteria, *conditions)


BulkCheck: TypeAlias = Callable[..., list[Any]]
"""Checks the rows of a bulk write and returns them as a list (they may be read only once)."""


def guarded_bulk_save(check: BulkCheck) -> Callable[..., None]:
    """``Session._bulk_save_mappings`` that runs ``check`` on the rows first.

    Private: ``Session._bulk_save_mappings`` with its signature. ``bulk_save_objects``,
    ``bulk_insert_mappings`` and ``bulk_update_mappings`` write through it without a flush, so
    no flush event sees their rows.
    """

    def _bulk_save_mappings(
        self: Session,
        mapper: Any,  # noqa: ANN401  # SQLAlchemy's signature
        mappings: Any,  # noqa: ANN401
        *,
        isupdate: bool,
        isstates: bool,
        **options: Any,  # noqa: ANN401
    ) -> None:
        rows = check(self, mapper, mappings, isupdate=isupdate, isstates=isstates)
        Session._bulk_save_mappings(  # the method this one extends
            self, mapper, rows, isupdate=isupdate, isstates=isstates, **options
        )

    return _bulk_save_mappings


def with_insert_from_select(statement: Executable, names: list[Any], query: Any) -> Executable:  # noqa: ANN401
    """A copy of an ``insert().from_select()`` that inserts ``names`` from ``query``.

    Private: ``Generative._generate``, ``Insert._select_names`` and ``Insert.select``; rebuilding
    the statement with the public API would drop its ``RETURNING``, ``ON CONFLICT`` and options.
    """
    copy = statement._generate()  # type: ignore[attr-defined]
    copy._select_names = names
    copy.select = query
    return copy  # type: ignore[no-any-return]


def listen_first(engine: Engine, identifier: str, listener: Callable[..., Any]) -> None:
    """``event.listen(engine, identifier, listener)`` for a dialect event, ``listener`` first.

    Private: ``_ListenerCollection.listeners``, the deque of a dialect's own listeners for one
    event. ``DialectEvents`` ignore ``insert=True``, and a ``do_execute`` listener that runs the
    statement itself and returns True stops the ones after it: pgkeel's must come before the
    application's. (Listeners on the ``Dialect`` or ``Engine`` class come before any dialect's
    own, and cannot be put behind it.)
    """
    event.listen(engine, identifier, listener)
    listeners = getattr(getattr(engine.dialect.dispatch, identifier), "listeners", None)
    if listeners is not None and listener in listeners:
        listeners.remove(listener)
        listeners.appendleft(listener)
