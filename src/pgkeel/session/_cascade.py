"""An ORM bulk ``delete()`` of a soft-delete parent soft-deletes its ``passive_deletes`` children.

A flush soft-deletes the children behind a ``passive_deletes=True`` delete cascade (the database
would delete them with ``ON DELETE CASCADE``, and a soft delete deletes nothing). A bulk
``delete(Parent).where(...)`` does the same here: before the parent rows are marked, each such
relationship's live children of those parents are deleted with a bulk ``delete()`` of their own,
which the hooks turn into a soft delete, and which cascades further down in turn. Everything
runs in the caller's transaction, so ``now()`` gives every level the same ``deleted_at``.

A soft-deleted row also leaves the relationships already loaded in the session: reads filter
deleted rows, but a collection (or a many-to-one reference) loaded before the delete is not read
again, not even by a later eager load of its parent. Such attributes are expired, so their next
access loads them again, through the filters.

A ``delete-orphan`` cascade soft-deletes too: SQLAlchemy finds orphans during the flush, after
``before_flush``, and would delete a soft-delete child removed from its parent for real.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Update, delete, func, select, tuple_, update
from sqlalchemy.orm import MANYTOONE, ONETOMANY, PassiveFlag
from sqlalchemy.orm.attributes import get_history, instance_state, set_committed_value

from pgkeel.session._core_filter import filtered
from pgkeel.softdelete import SoftDeleteMixin, is_marked_for_hard_delete
from pgkeel.tenancy import current_tenant

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from sqlalchemy.orm import Mapper, RelationshipProperty, Session

_PENDING: Final = PassiveFlag.PASSIVE_NO_INITIALIZE | PassiveFlag.INCLUDE_PENDING_MUTATIONS
"""History without loading, with the removals queued on a collection that is not loaded."""


def _passive_cascades(mapper: Mapper[Any]) -> Iterator[RelationshipProperty[Any]]:
    """One-to-many relationships of ``mapper`` that leave deleting soft-delete children to SQL."""
    for relationship in mapper.relationships:
        if (
            relationship.cascade.delete
            and relationship.passive_deletes
            and relationship.direction is ONETOMANY
            and issubclass(relationship.mapper.class_, SoftDeleteMixin)
        ):
            yield relationship


def soft_delete_children(session: Session, mapper: Mapper[Any], where: Any) -> None:  # noqa: ANN401
    """Soft-delete the live ``passive_deletes`` children of the parents ``where`` selects."""
    for relationship in _passive_cascades(mapper):
        pairs = relationship.local_remote_pairs or ()
        parents = select(*(local for local, _remote in pairs)).select_from(mapper)
        if where is not None:
            parents = parents.where(where)
        parents = filtered(parents, current_tenant(), live_only=True)
        children = tuple_(*(remote for _local, remote in pairs)).in_(parents)
        statement = delete(relationship.mapper).where(children)
        session.execute(statement.execution_options(synchronize_session="fetch"))


def soft_delete_update(mapper: Mapper[Any], where: Any) -> Update:  # noqa: ANN401
    """``UPDATE ... SET deleted_at = coalesce(deleted_at, now())`` of the rows ``where`` selects.

    A joined-table subclass keeps ``deleted_at`` in its base table, and PostgreSQL updates one
    table per statement: the base table's rows are then chosen by the subclass's primary key.
    """
    column = mapper.class_.deleted_at
    values = {column: func.coalesce(column, func.now())}
    if mapper.local_table is column.property.columns[0].table or mapper.inherits is None:
        statement = update(mapper).values(values)
        return statement if where is None else statement.where(where)
    base = mapper.base_mapper
    chosen = select(*mapper.primary_key).select_from(mapper)
    chosen = chosen if where is None else chosen.where(where)
    return update(base).values(values).where(tuple_(*base.primary_key).in_(chosen))


def forget_soft_deleted(session: Session, mappers: Iterable[Mapper[Any]]) -> None:
    """Expire every loaded relationship in ``session`` that may hold a row of ``mappers``.

    A relationship to a class of the same inheritance hierarchy counts: a collection of
    documents may hold the report that was deleted.
    """
    targets = {
        related
        for mapper in mappers
        for related in (*mapper.iterate_to_root(), *mapper.self_and_descendants)
    }
    if not targets:
        return
    for state in list(session.identity_map.all_states()):
        obj = state.obj()
        loaded = [
            relationship.key
            for relationship in state.mapper.relationships
            if relationship.mapper in targets and relationship.key in state.dict
        ]
        if obj is not None and loaded:
            session.expire(obj, loaded)


def _orphan_cascades(mapper: Mapper[Any]) -> Iterator[RelationshipProperty[Any]]:
    """Relationships of ``mapper`` whose ``delete-orphan`` cascade reaches soft-delete objects."""
    for relationship in mapper.relationships:
        if (
            relationship.cascade.delete_orphan
            and not relationship.viewonly
            and issubclass(relationship.mapper.class_, SoftDeleteMixin)
        ):
            yield relationship


def _orphans(session: Session) -> Iterator[tuple[object, RelationshipProperty[Any], object]]:
    """``(parent, relationship, child)`` for each persistent soft-delete orphan the flush deletes.

    The unit of work's rule: a child removed from a ``delete-orphan`` relationship whose
    ``hasparent`` flag is now false (not added to another parent since). Orphans of a parent that
    ``hard_delete`` removes, and those ``hard_delete`` names, are left to be deleted.
    """
    for parent in (*session.new, *session.dirty, *session.deleted):
        if is_marked_for_hard_delete(session, parent):
            continue
        for relationship in _orphan_cascades(instance_state(parent).mapper):
            for child in get_history(parent, relationship.key, _PENDING).deleted:
                if _is_soft_delete_orphan(session, relationship, child):
                    yield parent, relationship, child


def _is_soft_delete_orphan(
    session: Session,
    relationship: RelationshipProperty[Any],
    child: object,
) -> bool:
    if not isinstance(child, SoftDeleteMixin) or is_marked_for_hard_delete(session, child):
        return False
    state = instance_state(child)
    return state.persistent and not relationship.class_attribute.hasparent(state, optimistic=True)


def _keep_parent(parent: object, relationship: RelationshipProperty[Any], child: object) -> None:
    """Make ``child`` no orphan of ``parent``; a one-to-many child keeps its foreign key.

    Private: ``AttributeImpl.sethasparent``, the flag the unit of work reads to find orphans
    (``Mapper._is_orphan``, the dependency processors); no public API sets it. A backref had
    cleared the child's many-to-one, which the flush would write as a NULL foreign key: it is
    given back its parent, as already stored (``set_committed_value``, no history).
    """
    state = instance_state(child)
    relationship.class_attribute.impl.sethasparent(state, instance_state(parent), value=True)
    if relationship.direction is not ONETOMANY:
        return
    for reverse in state.mapper.relationships:
        if reverse.direction is not MANYTOONE or reverse.viewonly:
            continue
        history = get_history(child, reverse.key, _PENDING)
        if parent in history.deleted and not any(value is not None for value in history.added):
            set_committed_value(child, reverse.key, parent)


def soft_delete_orphans(session: Session) -> None:
    """Soft-delete, with ``session.delete``, the soft-delete children a flush finds orphaned.

    The row keeps its parent's foreign key and gets ``deleted_at``; the soft delete cascades down
    as ``session.delete`` does.
    """
    for parent, relationship, child in list(_orphans(session)):
        _keep_parent(parent, relationship, child)
        session.delete(child)
