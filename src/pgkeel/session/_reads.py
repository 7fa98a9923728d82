"""Read filters: the tenant and ``deleted_at`` criteria on every ORM statement and identity-map hit.

``on_orm_execute`` adds ``deleted_at IS NULL`` and ``tenant_id = <current tenant>`` to every ORM
SELECT, UPDATE and DELETE with ``with_loader_criteria`` (joins, aliases, relationship loads,
EXISTS from ``has()``/``any()``, subqueries and CTEs included) and turns an ORM bulk ``delete()``
on a soft-delete model into a soft delete; ``guarded_identity_lookup`` hides rows found in the
identity map that those criteria would have filtered out.
"""

from __future__ import annotations

import functools
import uuid
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar, cast

from sqlalchemy import TextClause, bindparam, false, inspect, select, tuple_
from sqlalchemy.orm import Mapper, Session, with_loader_criteria
from sqlalchemy.orm.exc import ObjectDeletedError
from sqlalchemy.orm.interfaces import UserDefinedOption
from sqlalchemy.sql.selectable import SelectStatementGrouping, TextualSelect

from pgkeel.errors import UnfilteredReadError
from pgkeel.session import _sqlalchemy_private as private
from pgkeel.session._by_primary_key import by_primary_key
from pgkeel.session._cascade import (
    forget_soft_deleted,
    soft_delete_children,
    soft_delete_update,
)
from pgkeel.session._core_filter import base_tables, filtered, from_conditions
from pgkeel.session._dbapi import role_bypasses_rls
from pgkeel.session._insert_ids import with_row_ids
from pgkeel.session._mapper_subqueries import refuse_unfiltered, unfiltered_attributes
from pgkeel.session._statement_writes import check_written_tenant
from pgkeel.session._upserts import guard_conflict_update
from pgkeel.softdelete import HARD_DELETE, INCLUDE_DELETED, SoftDeleteMixin, is_soft_delete_table
from pgkeel.tenancy import (
    ALL_TENANTS,
    TENANT_COLUMN,
    TenantMixin,
    TenantScope,
    current_tenant,
    is_tenant_table,
    require_tenant,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from sqlalchemy.engine import Result
    from sqlalchemy.orm import ORMExecuteState
    from sqlalchemy.orm.interfaces import ORMOption
    from sqlalchemy.sql.base import Executable

Answer = TypeVar("Answer")
UNKNOWN: Final = "\x00unknown"
"""Stands for a value that could not be read (the row is not visible here)."""


class IncludeDeleted(UserDefinedOption):
    """Carries ``include_deleted=True`` from a query to the lazy loads of the objects it loaded."""

    propagate_to_loaders = True


_CARRY_INCLUDE_DELETED = IncludeDeleted()
_LIVE_ONLY = with_loader_criteria(
    SoftDeleteMixin,
    lambda cls: cls.deleted_at.is_(None),
    include_aliases=True,
)
_NO_TENANT_ROWS = with_loader_criteria(TenantMixin, lambda _cls: false(), include_aliases=True)


@functools.lru_cache(maxsize=4096)
def _tenant_rows(tenant: uuid.UUID) -> ORMOption:
    """Criteria for the rows of ``tenant`` (the id is a bound parameter: one cached SQL for all).

    Options are immutable, so one per recent tenant is kept rather than rebuilt per statement.
    Used where the statement's parameters cannot carry the tenant (UPDATE, DELETE, INSERT ...
    FROM SELECT, ``from_statement``); SELECTs use ``_PARAMETER_TENANT_ROWS``.
    """
    return with_loader_criteria(
        TenantMixin, lambda cls: cls.tenant_id == tenant, include_aliases=True
    )


_TENANT_PARAMETER: Final = "pgkeel_tenant_id"
"""The execution parameter that carries the tenant into ``_PARAMETER_TENANT_ROWS``.

The lambda below spells it out: SQLAlchemy's lambdas turn a module name they read into a bound
value, so it cannot refer to this constant (were the two to differ, every tenant read would fail).
"""
_PARAMETER_TENANT_ROWS: Final = with_loader_criteria(
    TenantMixin,
    lambda cls: cls.tenant_id == bindparam("pgkeel_tenant_id"),
    include_aliases=True,
)
"""Criteria for the rows of the tenant passed as the ``_TENANT_PARAMETER`` of each execution.

One option, one cache key and one compiled SQL for every tenant, as with ``_tenant_rows``, but
the tenant is a parameter of the execution rather than a value captured in the statement: the
ORM annotates loader criteria, and SQLAlchemy then matches the captured value to the compiled
one by building SQL comparisons on every execution, which costs more than the rest of the
filter. The parameter is required: a statement that carries the option without it fails, it
never reads unfiltered. Lazy loads inherit the option with ``_LoadedFor``, which says whose
rows it meant.
"""


class _LoadedFor(UserDefinedOption):
    """The tenant a SELECT read for, carried with its criteria to the lazy loads of its objects.

    Not part of the cache key (user-defined options never are), so it costs no compiled SQL.
    """

    propagate_to_loaders = True


@functools.lru_cache(maxsize=4096)
def _loaded_for(tenant: uuid.UUID) -> _LoadedFor:
    return _LoadedFor(tenant)


def _carried_tenant(user_options: Sequence[ORMOption]) -> uuid.UUID | None:
    """The tenant of the query whose objects this load is for, if it carries criteria."""
    for option in user_options:
        if isinstance(option, _LoadedFor):
            return cast("uuid.UUID", option.payload)
    return None


def _is_tenant_mapper(mapper: Mapper[Any]) -> bool:
    return issubclass(mapper.class_, TenantMixin)


def _with_joined_defaults(mappers: Iterable[Mapper[Any]]) -> set[Mapper[Any]]:
    """``mappers`` and every mapper they reach through ``lazy="joined"`` relationships."""
    todo, seen = list(mappers), set()
    while todo:
        mapper = todo.pop()
        if mapper in seen:
            continue
        seen.add(mapper)
        todo.extend(rel.mapper for rel in mapper.relationships if rel.lazy == "joined")
    return seen


def _touches_tenant_rows(state: ORMExecuteState) -> bool:
    """Whether a statement reads or writes a tenant table anywhere (joins, EXISTS, options)."""
    mappers = _statement_mappers(state)
    if state.bind_mapper is not None:
        mappers.add(state.bind_mapper)
    if any(_is_tenant_mapper(mapper) for mapper in _with_joined_defaults(mappers)):
        return True
    return any(is_tenant_table(table) for table in private.statement_tables(state.statement))


class _PerStructure(Generic[Answer]):
    """Answers about statements kept per structure: the key of SQLAlchemy's compiled cache.

    Statements with the same key compile to the same SQL, so they mention the same tables and
    entities: walking each statement again on every execute would find the same answer. At most
    ``limit`` answers are kept (all are forgotten when it is reached); a statement SQLAlchemy
    does not cache is walked each time. A lookup hashes the whole key: questions asked of the
    same statements share one answer (a tuple) rather than one lookup each.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._answers: dict[Any, Answer] = {}
        self._limit = limit

    def get(self, keyed: Executable, decide: Callable[[], Answer]) -> Answer:
        """``decide()``, asked once per structure of ``keyed``."""
        key = private.structure_key(keyed)
        if key is None:
            return decide()
        answer = self._answers.get(key)
        if answer is None:
            if len(self._answers) >= self._limit:
                self._answers.clear()
            answer = self._answers[key] = decide()
        return answer


_TOUCHES_TENANT_ROWS: Final = _PerStructure[bool]()
_IS_FILTERED_CORE_SELECT: Final = _PerStructure[bool]()


def _needs_tenant(state: ORMExecuteState, keyed: Executable) -> bool:
    """``_touches_tenant_rows(state)`` decided once per structure of ``keyed``.

    ``keyed`` is ``state.statement`` or the statement pgkeel makes of it (the same statement
    plus pgkeel's options, which its key includes): keying on the one SQLAlchemy compiles next
    reuses the key SQLAlchemy computes anyway.
    """
    return _TOUCHES_TENANT_ROWS.get(keyed, lambda: _touches_tenant_rows(state))


def _require_tenant_if_needed(state: ORMExecuteState, keyed: Executable) -> None:
    """No tenant is set: refuse a statement that reads or writes tenant rows."""
    if _needs_tenant(state, keyed):
        require_tenant("An ORM statement on a tenant model")


def _is_filtered_core_select(statement: Executable) -> bool:
    """A Core ``select()`` (no ORM entity) that mentions a tenant or soft-delete table."""
    if not getattr(statement, "is_select", False):
        return False

    def decide() -> bool:
        tables = private.statement_tables(statement)
        return any(is_tenant_table(t) or is_soft_delete_table(t) for t in tables)

    return _IS_FILTERED_CORE_SELECT.get(statement, decide)


def _tenant_options(scope: TenantScope | None) -> list[ORMOption]:
    """The tenant criteria for ``scope`` (no tenant: no tenant rows at all)."""
    if scope is ALL_TENANTS:
        return []
    if isinstance(scope, uuid.UUID):
        return [_tenant_rows(scope)]
    return [_NO_TENANT_ROWS]


def _includes_deleted(
    state: ORMExecuteState, user_options: Sequence[ORMOption] | None = None
) -> bool:
    if state.execution_options.get(INCLUDE_DELETED):
        return True
    options = state.user_defined_options if user_options is None else user_options
    return any(isinstance(option, IncludeDeleted) for option in options)


def _soft_delete_options(
    state: ORMExecuteState,
    user_options: Sequence[ORMOption] | None = None,
    *,
    column_load: bool | None = None,
) -> list[ORMOption]:
    """``deleted_at IS NULL`` (``user_options``, ``column_load``: the state's, when known)."""
    if _includes_deleted(state, user_options):
        return [_CARRY_INCLUDE_DELETED] if state.is_select else []
    if state.is_column_load if column_load is None else column_load:
        return []  # refreshing an object the caller already holds
    return [_LIVE_ONLY]


def _with_filtered_extra_froms(state: ORMExecuteState, scope: TenantScope | None) -> Executable:
    """An ORM ``update()``/``delete()`` whose WHERE or values read other tables: those filtered too.

    SQLAlchemy applies loader criteria to the target mapper of a bulk UPDATE or DELETE only, not
    to the other tables of ``UPDATE ... FROM`` / ``DELETE ... USING`` (entities, aliases or
    ``Table`` objects): their soft-deleted rows, and on a role that bypasses row-level security
    other tenants' rows, would match, be returned, or be copied into the target. They get the
    criteria a ``select()`` would give them. Subqueries of entities get loader criteria already.
    """
    statement = state.statement
    extra = private.dml_extra_froms(statement)
    if not extra:
        return statement
    conditions = from_conditions(extra, scope, live_only=not _includes_deleted(state))
    return statement.where(*conditions) if conditions else statement  # type: ignore[attr-defined]


def _target_criteria(
    mapper: Mapper[Any],
    target: Any,  # noqa: ANN401  # the Table written
    scope: TenantScope | None,
    *,
    live_only: bool,
) -> list[Any]:
    """``tenant_id = <tenant>`` and ``deleted_at IS NULL`` for the rows of ``target``.

    A joined-table subclass's own table holds neither column: its rows are those whose key
    (the columns referring to the base table's key, else named as it) is among the base
    table's rows that match.
    """
    if is_tenant_table(target) or is_soft_delete_table(target):
        return from_conditions([target], scope, live_only=live_only)
    table = mapper.base_mapper.local_table
    base = table.alias()
    conditions = from_conditions([base], scope, live_only=live_only)
    if not conditions:
        return []
    keys = list(table.primary_key)
    own = [next((c for c in target.c if c.references(key)), target.c[key.name]) for key in keys]
    rows = select(*(base.c[key.name] for key in keys)).where(*conditions)
    return [tuple_(*own).in_(rows)]


def _with_core_only_criteria(state: ORMExecuteState, scope: TenantScope | None) -> Executable:
    """An ORM ``update()``/``delete()`` run with ``dml_strategy="core_only"``: criteria written in.

    SQLAlchemy compiles it as a Core statement: no loader criteria reach its target (the ORM
    SELECTs inside it still get them). The target's go into its WHERE, as for a statement by
    primary key; the other tables it reads are filtered as for any ORM UPDATE or DELETE.
    """
    statement, mapper = state.statement, state.bind_mapper
    if mapper is None:
        return statement
    live_only = not _includes_deleted(state)
    criteria = _target_criteria(mapper, statement.table, scope, live_only=live_only)  # type: ignore[attr-defined]
    return statement.where(*criteria) if criteria else statement  # type: ignore[attr-defined]


def _on_update_or_delete(
    state: ORMExecuteState,
    scope: TenantScope | None,
    options: list[ORMOption],
    outer: Executable | None = None,
) -> Result[Any] | None:
    """An ORM ``update()``/``delete()``: the other tables it reads filtered, its tenant checked.

    Run here (its result returned) when it runs by primary key, which loader criteria do not
    reach, or when it is a soft delete; ``None`` when the caller adds the criteria and runs it.
    ``outer``: the ``from_statement()`` it came in, which a soft delete runs in too.
    """
    state.statement = _with_filtered_extra_froms(state, scope)
    if private.runs_core_only(state):
        state.statement = _with_core_only_criteria(state, scope)
    if state.is_update and isinstance(scope, uuid.UUID):
        check_written_tenant(state, scope)
    soft_delete = state.is_delete and _soft_deletes_rows(state)
    if not _single_parameters(state.parameters):
        live_only = not _includes_deleted(state)
        written = by_primary_key(state, scope, live_only=live_only, soft_delete=soft_delete)
        if written is not None:
            return written
    return _soft_delete_rows(state, options, outer) if soft_delete else None


def _on_write(
    state: ORMExecuteState, scope: TenantScope | None, options: list[ORMOption]
) -> Result[Any] | None:
    """An ORM ``update()``/``delete()``, plain or inside ``select(M).from_statement()``."""
    outer = _dml_from_statement(state)
    written = _on_update_or_delete(state, scope, options, outer)
    if written is not None:
        return written
    statement = _with_filtered_expressions(state, state.statement).options(*options)
    state.statement = _rewrapped(outer, statement)
    return None


def _soft_deletes_rows(state: ORMExecuteState) -> bool:
    mapper = state.bind_mapper
    return (
        mapper is not None
        and issubclass(mapper.class_, SoftDeleteMixin)
        and not state.execution_options.get(HARD_DELETE)
    )


def _soft_delete_rows(
    state: ORMExecuteState, options: list[ORMOption], outer: Executable | None = None
) -> Result[Any]:
    """Run an ORM bulk ``delete()`` on a soft-delete model as ``UPDATE ... SET deleted_at``.

    Children behind ``passive_deletes`` cascades are soft-deleted first, in the same transaction;
    relationships already loaded in the session that may hold the rows are expired afterwards.
    A delete inside ``select(M).from_statement()`` (``outer``) runs as an UPDATE inside it.
    """
    delete = state.statement
    mapper = state.bind_mapper
    assert mapper is not None  # noqa: S101  # checked by _soft_deletes_rows
    where = getattr(delete, "whereclause", None)
    soft_delete_children(state.session, mapper, where)
    statement = soft_delete_update(mapper, where)
    returning = private.statement_returning(delete)
    if returning:
        statement = statement.returning(*returning)
    statement = statement.options(*private.statement_options(delete), *options)
    statement = statement.execution_options(**delete.get_execution_options())
    result = state.invoke_statement(statement=_rewrapped(outer, statement))
    forget_soft_deleted(state.session, [mapper])
    return result


def _on_insert(state: ORMExecuteState) -> None:
    """An ORM INSERT: a tenant is needed, its tenant_id checked, ``from_select`` filtered.

    Inside ``select(M).from_statement()`` too, checked as the plain INSERT. A ``from_select``
    also gets one new id per row where the model's Python default makes ids;
    an ``on_conflict_do_update()`` updates only a live row of the current tenant.
    """
    outer = _dml_from_statement(state)
    scope = current_tenant()
    if scope is None and _needs_tenant(state, state.statement):
        require_tenant("An ORM INSERT into a tenant model")
    if isinstance(scope, uuid.UUID):
        check_written_tenant(state, scope)
    if private.insert_from_select(state.statement) is not None:
        options = [*_tenant_options(scope), *_soft_delete_options(state)]
        state.statement = with_row_ids(state.statement).options(*options)
    if private.conflict_update(state.statement) is not None and state.bind_mapper is not None:
        state.statement = guard_conflict_update(
            state.statement, state.bind_mapper, scope, live_only=not _includes_deleted(state)
        )
    state.statement = _rewrapped(outer, state.statement)


def _refuse_unfiltered(state: ORMExecuteState) -> None:
    """``from_statement(text(...))``: refuse what neither pgkeel nor row-level security filters."""
    mappers = _with_joined_defaults(state.all_mappers)
    soft = [m.class_.__name__ for m in mappers if issubclass(m.class_, SoftDeleteMixin)]
    if soft and not _includes_deleted(state):
        raise UnfilteredReadError(
            f"select({soft[0]}).from_statement(<textual SQL>): pgkeel cannot add "
            "`deleted_at IS NULL` to SQL it did not build, so soft-deleted rows would be "
            f"returned. Fix: build the statement with select({soft[0]}) (pgkeel filters it), "
            "or filter deleted rows in the SQL yourself and say so with "
            ".execution_options(include_deleted=True)."
        )
    tenant = [m.class_.__name__ for m in mappers if _is_tenant_mapper(m)]
    scope = current_tenant()
    if tenant and isinstance(scope, uuid.UUID) and _bypasses_rls(state):
        raise UnfilteredReadError(
            f"select({tenant[0]}).from_statement(<textual SQL>) in tenant_context({scope}) on "
            "a role that bypasses row-level security: pgkeel cannot add the tenant filter to SQL "
            "it did not build, and the database would return every tenant's rows. Fix: build "
            f"the statement with select({tenant[0]}), or run it as the runtime role (row-level "
            "security filters raw SQL there), or under tenant_context(ALL_TENANTS) in a system "
            "job that means to read every tenant."
        )


def _is_filtered_table(table: Any) -> bool:  # noqa: ANN401  # a FROM object
    return is_tenant_table(table) or is_soft_delete_table(table)


def _table_sources(inner: Any) -> list[Any]:  # noqa: ANN401  # a Select or CompoundSelect
    """The tenant and soft-delete tables ``inner`` reads as ``Table`` objects, not as entities.

    Loader criteria reach an entity's rows only. A SELECT none of whose columns is an entity's
    is Core: every table it reads counts (subqueries included). A SELECT of entities filters
    them: the tables behind its other columns count (``select(Customer.id, customers.c.email)``).
    """
    parts = getattr(inner, "selects", None)
    if parts is not None:  # a union: each SELECT, a nested union in parentheses opened
        return [table for part in parts for table in _table_sources(_ungrouped(part))]
    descriptions = getattr(inner, "column_descriptions", ())
    plain = [d["expr"] for d in descriptions if d.get("entity") is None]
    sources = [inner] if len(plain) == len(descriptions) else plain
    return [t for s in sources for t in private.statement_tables(s) if _is_filtered_table(t)]


def _ungrouped(select: Any) -> Any:  # noqa: ANN401  # a SELECT, perhaps in parentheses
    return select.element if isinstance(select, SelectStatementGrouping) else select


_TABLE_SOURCES: Final = _PerStructure[tuple[Any, ...]]()


def _table_problem(state: ORMExecuteState, tables: Sequence[Any]) -> tuple[str, str, str] | None:
    """The first table whose rows would go unfiltered, why, and the other fix; else ``None``."""
    soft = [table.name for table in tables if is_soft_delete_table(table)]
    if soft and not _includes_deleted(state):
        other = "; if deleted rows are meant, say so with .execution_options(include_deleted=True)"
        return soft[0], "soft-deleted rows would be returned", other
    tenant = [table.name for table in tables if is_tenant_table(table)]
    scope = current_tenant()
    if tenant and isinstance(scope, uuid.UUID) and _bypasses_rls(state):
        why = f"in tenant_context({scope}) on a role that bypasses row-level security"
        other = "; or run it as the runtime role, where row-level security filters the table"
        return tenant[0], f"{why}, every tenant's rows would be returned", other
    return None


def _refuse_table_source(state: ORMExecuteState, inner: Executable) -> None:
    """``from_statement(select(<Table>))``: refused where the table's rows would go unfiltered."""
    tables = _TABLE_SOURCES.get(inner, lambda: tuple(_table_sources(inner)))
    problem = _table_problem(state, tables) if tables else None
    if problem is None:
        return
    name, why, other = problem
    mappers = [m for m in state.all_mappers if name in {t.name for t in m.tables}]
    model = mappers[0].class_.__name__ if mappers else ""
    entity = f"select({model})" if model else "select(<the mapped class>)"
    raise UnfilteredReadError(
        f"from_statement() of a select of the Table {name!r}: pgkeel filters mapped entities, "
        f"not Table objects, so {why}. Fix: select the entity, {entity} (pgkeel filters "
        f"it), as in .from_statement({entity}.where(...)){other}."
    )


def _from_sources(from_: Any) -> list[Any]:  # noqa: ANN401  # a FROM object
    """The tenant and soft-delete tables a FROM object reads as ``Table`` objects.

    An entity or ``aliased()`` entity reads none (loader criteria reach it); a subquery or CTE
    reads those of its SELECT (``_table_sources``); a table, an alias of one or a join, its own.
    """
    if private.orm_entity(from_) is not None:
        return []
    element = getattr(from_, "element", None)
    if getattr(element, "is_select", False):
        return _table_sources(element)
    return [table for _from, table in base_tables([from_]) if _is_filtered_table(table)]


def _own_table_sources(statement: Executable, mapper: Mapper[Any]) -> list[Any]:
    """The tables of ``mapper`` that ``statement`` reads as ``Table`` objects, not as entities.

    ``contains_eager()`` without an alias builds ``mapper``'s objects from its tables as the
    statement reads them: through a joined entity (``join(Customer)``) or a selected one the
    criteria reach them; joined or named as a ``Table`` object (``join(customers)``) nothing does.
    """
    own = {table for table in mapper.tables if _is_filtered_table(table)}
    if not own:
        return []
    selected = {
        table
        for description in getattr(statement, "column_descriptions", ())
        if isinstance(inspect(description.get("entity"), raiseerr=False), Mapper)
        for table in inspect(description["entity"]).tables
    }
    plain, froms = own - selected, statement.get_final_froms()  # type: ignore[attr-defined]
    return [t for f, t in base_tables(froms) if t in plain and private.orm_entity(f) is None]


def _eager_table_sources(statement: Executable) -> tuple[Any, ...]:
    """The tenant and soft-delete tables ``contains_eager()`` makes objects of, unfiltered.

    Asked once per structure (``_SELECT_ANSWERS``); a statement without options has none.
    """
    found: list[Any] = []
    for mapper, alias in private.contains_eager_sources(statement):
        sources = _own_table_sources(statement, mapper) if alias is None else _from_sources(alias)
        found.extend(sources)
    return tuple(found)


def _refuse_eager_table_source(state: ORMExecuteState, tables: Sequence[Any]) -> None:
    """``contains_eager()`` from a ``Table`` object: refused where its rows would go unfiltered."""
    problem = _table_problem(state, tables) if tables else None
    if problem is None:
        return
    name, why, other = problem
    mappers = [m for m, _alias in private.contains_eager_sources(state.statement)]
    names = [m.class_.__name__ for m in mappers if name in {t.name for t in m.tables}]
    model = names[0] if names else "<the mapped class>"
    raise UnfilteredReadError(
        f"contains_eager() loading {model} objects from the Table {name!r} (joined as a Table "
        "object, or a subquery or alias of one): pgkeel filters mapped entities, not Table "
        f"objects, so {why}. Fix: join the entity, as in .join({model}, ...) or the "
        f"relationship, or an aliased({model}) passed as contains_eager(..., alias=...), or a "
        f"subquery of select({model}){other}."
    )


def _bypasses_rls(state: ORMExecuteState) -> bool:
    connection = state.session.connection(bind_arguments=state.bind_arguments)
    return role_bypasses_rls(connection)[1]


def _filtered_from_statement(state: ORMExecuteState, options: list[ORMOption]) -> Executable:
    """``select(M).from_statement(<select>)``: the criteria reach every ORM SELECT inside it.

    They go on the ``from_statement()`` construct itself, which SQLAlchemy compiles first and
    whose criteria every ORM SELECT compiled within it then gets: a plain ``select()``, and each
    SELECT of a ``union_all()``/``except_()`` (nested ones too), whose own options SQLAlchemy
    does not read. Refused: ``text()``, and a SELECT of a ``Table`` object (no criteria reach it).
    """
    inner = private.from_statement_element(state.statement)
    if isinstance(inner, TextClause | TextualSelect) or inner is None:
        _refuse_unfiltered(state)
        return state.statement
    _refuse_table_source(state, inner)
    return state.statement.options(*options)


def _dml_from_statement(state: ORMExecuteState) -> Executable | None:
    """``select(M).from_statement(<insert/update/delete>)``: its DML in ``state.statement``.

    Returns the ``from_statement()`` construct (``None`` for any other statement), so that the
    DML gets the checks of its plain form (the tenant it writes, the tables it reads, a delete
    made a soft delete) and ``_rewrapped`` then puts the result back inside it.
    """
    if not state.is_from_statement:
        return None
    inner = private.from_statement_element(state.statement)
    if not getattr(inner, "is_dml", False):
        return None
    outer, state.statement = state.statement, inner
    return outer


def _rewrapped(outer: Executable | None, statement: Executable) -> Executable:
    """``statement`` back inside the ``from_statement()`` it came from (if it came from one)."""
    return statement if outer is None else private.with_from_statement_element(outer, statement)


def _with_filtered_expressions(state: ORMExecuteState, statement: Executable) -> Executable:
    """``with_expression()`` subqueries read only the tenant's live rows too."""
    if not private.has_with_expression(private.statement_options(statement)):
        return statement
    scope, live_only = current_tenant(), not _includes_deleted(state)
    if scope is ALL_TENANTS and not live_only:
        return statement
    return private.map_with_expressions(
        statement, lambda expression: filtered(expression, scope, live_only=live_only)
    )


def _single_parameters(parameters: object) -> bool:
    """Whether an execution has one set of parameters (a mapping or none), not a list."""
    return parameters is None or type(parameters) is dict or isinstance(parameters, Mapping)


def _select_tenant_options(
    scope: TenantScope | None, carried: uuid.UUID | None
) -> tuple[list[ORMOption], _LoadedFor | None]:
    """The tenant criteria of a SELECT, and the tenant its lazy loads carry, if any.

    ``carried`` is the tenant of the load it continues. A lazy load keeps its query's criteria:
    in another tenant's context it reads nothing, as both tenants' criteria would say; under
    ``ALL_TENANTS`` it reads the query's tenant's rows.
    """
    if isinstance(scope, uuid.UUID):
        if carried is not None and carried != scope:
            return [_NO_TENANT_ROWS], None
        return [_PARAMETER_TENANT_ROWS], _loaded_for(scope)
    return ([] if scope is ALL_TENANTS else [_NO_TENANT_ROWS]), None


_SelectAnswers: TypeAlias = "tuple[bool, bool, tuple[Any, ...]]"


def _select_answers(state: ORMExecuteState) -> _SelectAnswers:
    """Whether a SELECT reaches an unfiltered attribute or reads tenant rows; its eager tables.

    The last: the tables its ``contains_eager()`` options build objects from unfiltered.
    """
    return (
        _statement_reaches_unfiltered(state),
        _touches_tenant_rows(state),
        _eager_table_sources(state.statement),
    )


def _has_options(statement: Executable) -> bool:
    """Whether ``statement`` carries loader or user options (its own, or its earlier entities')."""
    return bool(
        private.statement_options(statement)
        or getattr(statement, "_memoized_select_entities", None)
    )


def _filter_select(state: ORMExecuteState, scope: TenantScope | None, *, column_load: bool) -> None:
    """A SELECT: the criteria as options, the tenant as the ``_TENANT_PARAMETER``.

    No tenant set: the statement is refused if it reads tenant rows, else gets no tenant rows at
    all. Both questions are answered once per structure, on the statement SQLAlchemy compiles
    next (its key is then computed once, for both and for SQLAlchemy's own lookup). A statement
    without options (the most common read) skips the walks over them: it carries no tenant of
    an earlier load, no ``include_deleted`` option and no ``with_expression()``.
    """
    statement = state.statement
    has_options = _has_options(statement)
    user_options = state.user_defined_options if has_options else ()
    carried = _carried_tenant(user_options)
    tenant = carried or (scope if isinstance(scope, uuid.UUID) else None)
    if tenant is not None:
        given = cast("Mapping[str, Any] | None", state.parameters)
        state.parameters = (
            {**given, _TENANT_PARAMETER: tenant} if given else {_TENANT_PARAMETER: tenant}
        )
    criteria, loaded_for = _select_tenant_options(scope, carried)
    options = (*criteria, *_soft_delete_options(state, user_options, column_load=column_load))
    if has_options:
        filtered = _with_filtered_expressions(state, statement)
        statement = filtered.options(*_with_carried(options, loaded_for))
    else:
        statement = _with_pgkeel_options(statement, options, loaded_for)
    reaches_unfiltered, reads_tenant_rows, eager_tables = _SELECT_ANSWERS.get(
        statement, lambda: _select_answers(state)
    )
    if reaches_unfiltered:
        _refuse_unfiltered_attributes(state)
    if eager_tables:
        _refuse_eager_table_source(state, eager_tables)
    if scope is None and reads_tenant_rows:
        require_tenant("An ORM statement on a tenant model")
    state.statement = statement


_OptionSet: TypeAlias = "tuple[ORMOption, ...]"
_FILTERED_SELECTS: Final[weakref.WeakKeyDictionary[Executable, dict[_OptionSet, Executable]]] = (
    weakref.WeakKeyDictionary()
)


def _with_carried(options: _OptionSet, loaded_for: _LoadedFor | None) -> _OptionSet:
    """``options`` and, when there is one, the tenant the SELECT carries to its lazy loads."""
    return options if loaded_for is None else (*options, loaded_for)


def _with_pgkeel_options(
    statement: Executable, options: _OptionSet, loaded_for: _LoadedFor | None
) -> Executable:
    """``statement.options(*options, loaded_for)``, its cache key computed once per statement.

    The criteria options are the same for every tenant (the tenant is a parameter), so the copy
    with them is made once per statement and option set and kept while the statement lives (weak
    keys). The tenant's ``_LoadedFor`` is added to a copy that takes that key over: it is not
    part of cache keys. A statement built once and executed in every transaction (a module-level
    ``select(Item)``) then reaches SQLAlchemy without another walk of its whole structure.
    """
    try:
        made = _FILTERED_SELECTS.get(statement)
        if made is None:
            made = _FILTERED_SELECTS[statement] = {}
    except TypeError:  # a statement that takes no weak reference: no copy kept
        return statement.options(*_with_carried(options, loaded_for))
    filtered = made.get(options)
    if filtered is None:
        filtered = made[options] = statement.options(*options)
    return filtered if loaded_for is None else private.with_uncached_option(filtered, loaded_for)


@functools.lru_cache(maxsize=1024)
def _reaches_unfiltered(mapper: Mapper[Any]) -> bool:
    """Whether loading ``mapper`` (with its joined eager loads) compiles such an attribute."""
    return any(unfiltered_attributes(m) for m in _with_joined_defaults([mapper]))


def _statement_mappers(state: ORMExecuteState) -> set[Mapper[Any]]:
    """The mappers a statement loads: its entities and those its loader options name."""
    return {*state.all_mappers, *private.option_mappers(state.statement)}


def _statement_reaches_unfiltered(state: ORMExecuteState) -> bool:
    """Whether the statement loads a mapper that compiles such an attribute."""
    return any(_reaches_unfiltered(mapper) for mapper in _statement_mappers(state))


_SELECT_ANSWERS: Final = _PerStructure[_SelectAnswers]()


def _refuse_unfiltered_attributes(state: ORMExecuteState) -> None:
    """``column_property()`` subqueries on ``Table`` objects: refused where a filter is missing."""
    mappers = _statement_mappers(state)
    if not any(_reaches_unfiltered(mapper) for mapper in mappers):
        return
    scope = current_tenant()
    refuse_unfiltered(
        _with_joined_defaults(mappers),
        tenant_missing=lambda: scope is not ALL_TENANTS and _bypasses_rls(state),
        deleted_missing=not _includes_deleted(state),
    )


def _refresh_of_own_tenant(state: ORMExecuteState, scope: TenantScope | None) -> Any:  # noqa: ANN401
    """A refresh or an expired attribute's load: the tenant criterion written into its WHERE.

    SQLAlchemy applies no loader criteria to these loads (the object is the caller's); on a role
    that bypasses row-level security an object carrying another tenant's id (forged, merged with
    ``load=False``, or loaded before a tenant switch) would otherwise load that tenant's row.
    """
    mapper = state.bind_mapper
    if mapper is None or not _is_tenant_mapper(mapper) or scope is ALL_TENANTS:
        return state.statement
    scope = require_tenant(f"Loading {mapper.class_.__name__}") if scope is None else scope
    return state.statement.where(mapper.class_.tenant_id == scope)  # type: ignore[attr-defined]


def on_orm_execute(state: ORMExecuteState) -> Result[Any] | None:
    """``do_orm_execute``: add the tenant and soft-delete criteria to every ORM statement.

    Core ``select()``s built from mapped attributes (``select(exists().where(Invoice.id == x))``)
    get them too, and so do ``from_statement(select(...))``, ``insert().from_select()`` and
    ``with_expression()`` subqueries; ``text()`` and statements on ``Table`` objects rely on
    row-level security.
    """
    if not (state.is_orm_statement or _is_filtered_core_select(state.statement)):
        if state.is_insert:  # a Core insert(table).from_select() needs ids per row too
            state.statement = with_row_ids(state.statement)
        return None
    if state.is_insert:
        _on_insert(state)
        return None
    if not (state.is_select or state.is_update or state.is_delete or state.is_from_statement):
        return None  # a from_statement(text()) is not "is_select"
    scope = current_tenant()
    if state.is_select and not state.is_from_statement:
        column_load = state.is_column_load
        if column_load:
            state.statement = _refresh_of_own_tenant(state, scope)
        if _single_parameters(state.parameters):
            _filter_select(state, scope, column_load=column_load)  # refuses unfiltered too
            return None
        _refuse_unfiltered_attributes(state)
        _refuse_eager_table_source(state, _eager_table_sources(state.statement))
    options = [*_tenant_options(scope), *_soft_delete_options(state)]
    if scope is None:
        _require_tenant_if_needed(state, state.statement)
    if state.is_update or state.is_delete:
        return _on_write(state, scope, options)
    if state.is_from_statement:
        state.statement = _filtered_from_statement(state, options)
    else:
        state.statement = _with_filtered_expressions(state, state.statement).options(*options)
    return None


def loaded_value(obj: object, name: str) -> Any:  # noqa: ANN401  # any column value
    """An attribute's value, loading it if needed; ``UNKNOWN`` when the row is not visible."""
    if name in obj.__dict__:
        return obj.__dict__[name]
    try:
        return getattr(obj, name)
    except ObjectDeletedError:
        return UNKNOWN


def _visible(obj: object, execution_options: Mapping[str, Any]) -> bool:
    """Whether an object found in the identity map may be returned in the current context."""
    if isinstance(obj, TenantMixin):
        scope = require_tenant(f"Loading {type(obj).__name__}")
        if scope is not ALL_TENANTS and loaded_value(obj, TENANT_COLUMN) != scope:
            return False
    if isinstance(obj, SoftDeleteMixin) and not execution_options.get(INCLUDE_DELETED):
        return loaded_value(obj, "deleted_at") is None
    return True


guarded_identity_lookup: Final = private.guarded_identity_lookup(_visible)
"""``Session._identity_lookup`` that obeys the filters; ``install_session_hooks`` adds it."""


def _held_key(instance: object) -> Any | None:  # noqa: ANN401  # an identity key
    """The identity key ``instance`` names, when its primary key is set; else None."""
    state = inspect(instance)
    if state.key is not None:
        return state.key
    key = state.mapper.identity_key_from_instance(instance)
    return None if any(value is None for value in key[1]) else key


def guarded_merge(
    self: Session,
    instance: object,
    *,
    load: bool = True,
    options: Sequence[ORMOption] | None = None,
) -> Any:  # noqa: ANN401  # the merged object, of the instance's class
    """``Session.merge`` that refuses to hand back an object the current context hides.

    ``merge`` takes the object of the same key from the identity map as it is, without
    ``_identity_lookup``: a row soft-deleted in this session, or loaded in another tenant's
    context, came back from it (and took the merged values). It is refused instead.
    """
    key = _held_key(instance)
    held = self.identity_map.get(key) if key is not None else None
    if held is not None and not _visible(held, {}):
        name = type(held).__name__
        raise UnfilteredReadError(
            f"Session.merge() of {name}(id={key[1][0] if key else '?'}): this session holds that "
            "row from an earlier load, and the current context hides it (soft-deleted, or "
            "another tenant's): merge would return it and copy the values into it. Fix: merge "
            "in the tenant context that loaded it, or session.expunge() it first; to change a "
            "deleted row, load it with .execution_options(include_deleted=True) and change "
            "that object."
        )
    return Session.merge(self, instance, load=load, options=options)
