"""The hook on each statement as it reaches the driver: the tenant setting, the AUTOCOMMIT wrapper.

pgkeel listens on the dialect's ``do_execute``, ``do_execute_no_params`` and ``do_executemany``
events rather than on the engine's ``before_cursor_execute`` and ``after_cursor_execute``: any
connection-event listener on an engine makes every ``Connection`` join the engine's event
dispatcher and build a joined listener at each event point its transactions pass, about a tenth
of the client's time for a short ORM read (docs/performance.md); the dialect's events are
dispatched without that. Transactions are told apart by ``current_transaction`` rather than by
``begin``/``commit``/``rollback`` events, and a ``ROLLBACK TO SAVEPOINT`` by its text as it is
sent (``sync_tenant``).

The listeners go first among the dialect's own (``listen_first``): a listener of the application's
that runs the statement itself, and returns True so that the dialect does not, still finds the
tenant set (one on the ``Dialect`` or ``Engine`` class would run before them). They run after
every ``before_cursor_execute`` listener, right before the driver call. In ``AUTOCOMMIT`` outside
a tenant context a statement runs inside the transaction ``begin_cleared`` opened for it: the
listener runs the listeners after it and then the dialect's own call, as SQLAlchemy would, and
commits once the statement has run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgkeel.session._autocommit import commit_cleared
from pgkeel.session._tenant_setting import sync_tenant

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext


def _run_in_wrapper(
    event_name: str,
    own: Callable[..., bool],
    default: Callable[..., None],
    *arguments: Any,  # noqa: ANN401  # the event's arguments, the context last
) -> None:
    """Run the statement as SQLAlchemy would: the listeners after ``own``, else ``default``."""
    context: ExecutionContext = arguments[-1]
    after_own = False
    for listener in getattr(context.dialect.dispatch, event_name):
        if after_own and listener(*arguments):
            break
        after_own = after_own or listener is own
    else:
        default(*arguments)
    commit_cleared(context.root_connection)


def on_execute(
    cursor: DBAPICursor,
    statement: str,
    parameters: Any,  # noqa: ANN401  # the driver's parameters
    context: ExecutionContext,
) -> bool:
    """``do_execute``: the tenant first; True if the statement was run here (AUTOCOMMIT)."""
    if not sync_tenant(context.root_connection, statement):
        return False
    arguments = (cursor, statement, parameters, context)
    _run_in_wrapper("do_execute", on_execute, context.dialect.do_execute, *arguments)
    return True


def on_execute_no_params(cursor: DBAPICursor, statement: str, context: ExecutionContext) -> bool:
    """``do_execute_no_params``: as ``on_execute``."""
    if not sync_tenant(context.root_connection, statement):
        return False
    arguments = (cursor, statement, context)
    default = context.dialect.do_execute_no_params
    _run_in_wrapper("do_execute_no_params", on_execute_no_params, default, *arguments)
    return True


def on_executemany(
    cursor: DBAPICursor,
    statement: str,
    parameters: Any,  # noqa: ANN401  # the driver's parameter sets
    context: ExecutionContext,
) -> bool:
    """``do_executemany``: as ``on_execute``."""
    if not sync_tenant(context.root_connection, statement):
        return False
    arguments = (cursor, statement, parameters, context)
    _run_in_wrapper("do_executemany", on_executemany, context.dialect.do_executemany, *arguments)
    return True
